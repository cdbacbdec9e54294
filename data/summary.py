"""What a generator run loaded, for the CLI, the tests and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoadSummary:
    scale: str
    seed: int
    counts: dict[str, int] = field(default_factory=dict)  # table -> rows
    seconds: dict[str, float] = field(default_factory=dict)  # table -> seconds spent loading it
    total_seconds: float = 0.0
    checksum: str = ""

    def rows_per_second(self, table: str) -> float:
        spent = self.seconds.get(table, 0.0)
        return self.counts.get(table, 0) / spent if spent > 0 else float("nan")

    def describe(self) -> str:
        lines = [f"loaded the {self.scale} data set (seed {self.seed}, synthetic) in {self.total_seconds:.1f} s"]
        for table, rows in self.counts.items():
            spent = self.seconds.get(table)
            rate = f"  {rows / spent:>12,.0f} rows/s" if spent else ""
            lines.append(f"  {table:<22} {rows:>10,} rows{rate}")
        return "\n".join(lines)
