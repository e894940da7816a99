#!/usr/bin/env python3
"""Copies the run header and the summary table of Benchmarks/RESULTS.md into README.md, between the
`<!-- bench:start -->` and `<!-- bench:end -->` markers, so the README shows the latest run."""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    results = (REPO / "Benchmarks" / "RESULTS.md").read_text()
    readme_path = REPO / "README.md"
    readme = readme_path.read_text()
    # The run line, the machine/code/version bullets (not the long method text), then the summary table.
    head = results.split("\n## Summary", 1)[0]
    keep = [l for l in head.splitlines()[1:] if l.startswith("Run on") or
            (l.startswith("- ") and not l.startswith(("- Method", "- Reproduce")))]
    summary = results.split("## Summary: ours vs the fastest other tool (ratio of medians)\n", 1)[1]
    summary = summary.split("\n## ", 1)[0].strip()
    block = "\n".join(keep) + "\n\n" + summary + "\n"
    new, n = re.subn(r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)", lambda m: m.group(1) + block + m.group(2),
                     readme, flags=re.S)
    if n != 1:
        print("readme_table.py: README.md has no <!-- bench:start --> ... <!-- bench:end --> block", file=sys.stderr)
        return 1
    readme_path.write_text(new)
    print("README.md: bench summary updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
