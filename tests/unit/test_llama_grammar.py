"""The embedded model's grammar: tool schemas are made safe for llama.cpp (no model run)."""

from __future__ import annotations

from controlroom.agents.llama import choice_schema


def test_choice_schema_leaves_out_what_the_llama_grammar_cannot_take() -> None:
    # An e-mail `pattern` (its `\.` escapes do not parse) and a 20000-character bound crash
    # llama.cpp's grammar; argument names (even `pattern`) and short bounds stay.
    tool = {
        "type": "function",
        "function": {
            "name": "send_mail",
            "parameters": {
                "type": "object",
                "properties": {
                    "to": {
                        "type": "array",
                        "items": {"type": "string", "pattern": r"^\S+@\S+\.\w+$"},
                    },
                    "body": {"type": "string", "maxLength": 20000},
                    "subject": {"type": "string", "maxLength": 200},
                    "pattern": {"type": "string"},
                },
            },
        },
    }
    args = choice_schema([tool], "send_mail")["properties"]["arguments"]
    assert "pattern" not in args["properties"]["to"]["items"]
    assert "maxLength" not in args["properties"]["body"]
    assert args["properties"]["subject"]["maxLength"] == 200
    assert args["properties"]["pattern"] == {"type": "string"}
