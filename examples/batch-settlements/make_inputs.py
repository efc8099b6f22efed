"""Write N inputs (JSON Lines) for the batch, every K-th marked LARGE (needs approval).

python examples/batch-settlements/make_inputs.py 200 --large-every 10 > inputs.jsonl
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int)
    parser.add_argument("--large-every", type=int, default=10, help="0: none is large")
    args = parser.parse_args()
    for n in range(args.count):
        large = args.large_every and n % args.large_every == args.large_every - 1
        text = f"Settle request #{n:04d}" + (" (LARGE)" if large else "")
        print(json.dumps({"input": text}))


if __name__ == "__main__":
    main()
