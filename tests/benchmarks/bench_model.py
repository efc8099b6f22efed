"""Benchmark: the embedded model through controlroom's adapter vs raw llama-cpp-python.

Same model file, same loaded llama.cpp context, same prompt and sampling, streamed both
ways; the context's cache is reset before every generation so neither side profits from
the other's prompt. Runs alternate (raw, adapter, raw, ...). Reports time to first token
and tokens/s for each, and the adapter/raw throughput ratio (target: at least 0.95).

    python tests/benchmarks/bench_model.py --out bench-model.json [--model qwen2.5-coder-0.5b]
        [--smoke]

The model is resolved as the spec ``local:MODEL`` is everywhere else: the 0.5B Qwen by
default (the `local-small` extra, which the dev install includes), joined from its packages
into the model cache (``CONTROLROOM_MODEL_CACHE``) on first use, offline; ``--model`` also
takes ``qwen2.5-coder-1.5b`` (the `local` extra) or the path of any GGUF file. With
``--smoke`` it generates a few tokens once each way (tests/benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from controlroom.agents.llama import LlamaChatModel, load_llama  # noqa: E402
from controlroom.agents.models import resolve_model  # noqa: E402
from controlroom.agents.weights import WEIGHTS  # noqa: E402
from tests.benchmarks.common import parse_args  # noqa: E402

SYSTEM = "You are a helpful assistant."
PROMPT = "Write the numbers from 1 to 200 separated by commas, and nothing else."
MAX_TOKENS = 96


def raw_once(llama: Any, max_tokens: int) -> tuple[float, int, float]:
    llama.reset()
    start = time.perf_counter()
    first = 0.0
    tokens = 0
    stream = llama.create_chat_completion(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        temperature=0.0,
        seed=7,
        max_tokens=max_tokens,
        stream=True,
    )
    for part in stream:
        if part["choices"][0].get("delta", {}).get("content"):
            tokens += 1
            if not first:
                first = time.perf_counter() - start
    return first, tokens, time.perf_counter() - start


def adapter_once(model: LlamaChatModel, llama: Any) -> tuple[float, int, float]:
    llama.reset()
    start = time.perf_counter()
    first = 0.0
    tokens = 0
    for chunk in model.stream([SystemMessage(SYSTEM), HumanMessage(PROMPT)]):
        if chunk.content:
            tokens += 1
            if not first:
                first = time.perf_counter() - start
    return first, tokens, time.perf_counter() - start


def summarise(samples: list[tuple[float, int, float]]) -> dict[str, float]:
    ttft = [s[0] * 1000 for s in samples]
    rates = [(s[1] - 1) / (s[2] - s[0]) for s in samples if s[1] > 1 and s[2] > s[0]]
    return {
        "ttft_ms_median": round(statistics.median(ttft), 1),
        "tokens_per_s_median": round(statistics.median(rates), 2),
        "tokens_median": statistics.median(s[1] for s in samples),
    }


def load_model(name: str, max_tokens: int) -> LlamaChatModel:
    """The adapter for ``local:NAME`` (a packaged model or a GGUF path), as runs resolve it."""
    resolved = resolve_model(f"local:{name}")
    if not isinstance(resolved, LlamaChatModel):
        raise TypeError(f"local:{name} resolved to {type(resolved).__name__}, not the adapter")
    return resolved.model_copy(update={"max_tokens": max_tokens})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("bench-model.json"))
    parser.add_argument(
        "--model",
        default="qwen2.5-coder-0.5b",
        help=f"one of {', '.join(sorted(WEIGHTS))}, or a GGUF file's path",
    )
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1, help="untimed generations each way")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    args = parse_args(parser, argv, smoke={"runs": 1, "warmup": 0, "max_tokens": 6})

    model = load_model(args.model, args.max_tokens)
    # The raw side must use the very llama.cpp object the adapter generates with (one loaded
    # model and context, shared): load_llama returns the process-wide instance for this file,
    # context size and thread count, loading it on first use.
    llama, _ = load_llama(model.model_path, model.n_ctx, model.n_threads)
    for _ in range(args.warmup):  # both paths share the loaded model
        raw_once(llama, model.max_tokens)
        adapter_once(model, llama)
    raw: list[tuple[float, int, float]] = []
    ours: list[tuple[float, int, float]] = []
    for _ in range(args.runs):
        raw.append(raw_once(llama, model.max_tokens))
        ours.append(adapter_once(model, llama))
    raw_s, ours_s = summarise(raw), summarise(ours)
    ratio = round(ours_s["tokens_per_s_median"] / raw_s["tokens_per_s_median"], 3)
    report = {
        "benchmark": "embedded model: controlroom adapter vs raw llama-cpp-python",
        "smoke": args.smoke,
        "model": args.model,
        "prompt": PROMPT,
        "max_tokens": args.max_tokens,
        "runs_each": args.runs,
        "raw": raw_s,
        "adapter": ours_s,
        "throughput_ratio_adapter_over_raw": ratio,
        "ttft_ratio_adapter_over_raw": round(ours_s["ttft_ms_median"] / raw_s["ttft_ms_median"], 3),
        "target_ratio": 0.95,
        "meets_target": ratio >= 0.95,
        "machine": {"python": platform.python_version(), "cpu_count": model.n_threads},
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{args.model}: raw {raw_s['tokens_per_s_median']} tok/s, TTFT {raw_s['ttft_ms_median']} ms; "
        f"adapter {ours_s['tokens_per_s_median']} tok/s, TTFT {ours_s['ttft_ms_median']} ms; "
        f"throughput ratio {ratio} (target >= 0.95) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
