"""Benchmark: a Resonance block against multi-head attention blocks of the same width, by sequence length.

Forward + backward time (median of repeats after one warm-up) and peak memory of one block at
lengths 256, 1k, 4k, 16k and 64k, with the same tokens per batch at every length (batch = 16,384 /
length, at least 1), on one CPU thread. Each case runs in its own process, so its peak memory is
that process's maximum resident set (getrusage) after the warm-up minus the maximum before it (the
model and input already built). Blocks, all pre-LayerNorm with a 4x feed-forward layer:

    resonance       dmas ResonanceBlock (HierarchicalFFT + MultiHeadFrequencyLayer + AdvancedSpectralGating)
    eigenstate      dmas EigenstateBlock (Temporal Eigenstate layer, FFT convolution)
    attention       torch nn.MultiheadAttention (need_weights=False: scaled_dot_product_attention,
                    a fused kernel that never holds the L x L weights)
    attention_dmas  the event encoder's SelfAttentionBlock (scaled_dot_product_attention with a padding
                    bias since ccc932e; its skip below still budgets [B, H, L, L] scores, as the block
                    held before: not re-measured since)

A case whose projected time or memory is too large is skipped, with the reason in the output.
Prints a table on stderr and one JSON line on stdout:

    flock /tmp/dmas-cpu.lock timeout 1200 .venv/bin/python tests/bench/bench_spectral.py [--width 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

LENGTHS = (256, 1024, 4096, 16384, 65536)
KINDS = ("resonance", "eigenstate", "attention", "attention_dmas")
TOKENS = 16_384  # per batch, at every length
MAX_CASE_SECONDS = 150.0  # projected forward + backward time of one case's warm-up
MAX_EXTRA_GIB = 8.0  # projected peak memory of one case


def block(kind: str, width: int, heads: int, length: int):
    import torch
    from torch import nn

    from dmas.model import EigenstateBlock, ResonanceBlock
    from dmas.model.encoders import SelfAttentionBlock

    class TorchAttentionBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(width)
            self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
            self.ln_2 = nn.LayerNorm(width)
            self.ffn = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def forward(self, x, mask):
            h = self.ln_1(x)
            x = x + self.attention(h, h, h, need_weights=False)[0]
            return x + self.ffn(self.ln_2(x))

    torch.manual_seed(0)
    if kind == "resonance":
        return ResonanceBlock(width, length, heads)
    if kind == "eigenstate":
        return EigenstateBlock(width, length)
    if kind == "attention":
        return TorchAttentionBlock()
    return SelfAttentionBlock(width, heads)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_case(kind: str, length: int, batch: int, width: int, heads: int) -> dict:
    """One case in this process: build, warm up (peak memory), then time forward + backward."""
    import torch

    torch.set_num_threads(1)
    model = block(kind, width, heads, length)
    x = torch.randn(batch, length, width, generator=torch.Generator().manual_seed(1), requires_grad=True)
    mask = torch.ones(batch, length, dtype=torch.bool)
    grad = torch.randn(batch, length, width, generator=torch.Generator().manual_seed(2))

    def step() -> float:
        started = time.perf_counter()
        model(x, mask).backward(grad)
        seconds = time.perf_counter() - started
        model.zero_grad(set_to_none=True)
        x.grad = None
        return seconds

    before = max_rss_mib()
    warmup = step()
    peak = max_rss_mib()
    times = []
    while len(times) < 5 and (not times or sum(times) < 6.0) and warmup < 20.0:
        times.append(step())
    return {"kind": kind, "length": length, "batch": batch, "warmup_s": round(warmup, 4),
            "ms": round(1000 * statistics.median(times or [warmup]), 2), "repeats": len(times),
            "peak_extra_mib": round(peak - before, 1), "max_rss_mib": round(peak, 1),
            "parameters": sum(p.numel() for p in model.parameters())}


def projected_skip(kind: str, length: int, batch: int, heads: int, done: dict) -> str | None:
    """Why a case is not run (None: run it), from the same kind's last measured length."""
    if kind == "attention_dmas":
        gib = 4 * batch * heads * length**2 * 4 / 2**30  # scores, weights and their gradients, float32
        if gib > MAX_EXTRA_GIB:
            return f"its [B, H, L, L] scores and gradients need ~{gib:.0f} GiB > {MAX_EXTRA_GIB:.0f} GiB"
    previous = [r for r in done.values() if r["kind"] == kind and "ms" in r]
    if previous:
        last = previous[-1]
        tokens_ratio = batch * length / (last["batch"] * last["length"])
        growth = length / last["length"] if kind.startswith("attention") else 1.2
        seconds = last["ms"] / 1000 * tokens_ratio * growth
        if seconds > MAX_CASE_SECONDS:
            return f"projected ~{seconds:.0f} s per forward+backward (from {last['length']}) > {MAX_CASE_SECONDS:.0f} s"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--case", nargs=3, metavar=("KIND", "LENGTH", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, length, batch = args.case[0], int(args.case[1]), int(args.case[2])
        print(json.dumps(run_case(kind, length, batch, args.width, args.heads)))
        return

    started = time.perf_counter()
    results: dict[tuple[str, int], dict] = {}
    for length in LENGTHS:
        batch = max(1, TOKENS // length)
        for kind in KINDS:
            reason = projected_skip(kind, length, batch, args.heads, results)
            if reason is None:
                done = subprocess.run(
                    [sys.executable, __file__, "--width", str(args.width), "--heads", str(args.heads),
                     "--case", kind, str(length), str(batch)], capture_output=True, text=True, timeout=600)
                if done.returncode == 0:
                    results[kind, length] = json.loads(done.stdout.strip().splitlines()[-1])
                else:
                    reason = f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
            if reason is not None:
                results[kind, length] = {"kind": kind, "length": length, "batch": batch, "skipped": reason}
            print(f"{kind:>15} L={length:>6} B={batch:>3}: "
                  f"{results[kind, length].get('ms', results[kind, length].get('skipped'))}", file=sys.stderr)

    rows = []
    for length in LENGTHS:
        row = {"length": length, "batch": max(1, TOKENS // length)}
        for kind in KINDS:
            case = results[kind, length]
            row[f"{kind}_ms"] = case.get("ms")
            row[f"{kind}_peak_mib"] = case.get("peak_extra_mib")
            if "skipped" in case:
                row[f"{kind}_skipped"] = case["skipped"]
        for baseline in ("attention", "attention_dmas"):
            if row["resonance_ms"] and row[f"{baseline}_ms"]:
                row[f"{baseline}_over_resonance"] = round(row[f"{baseline}_ms"] / row["resonance_ms"], 2)
        rows.append(row)

    def crossover(baseline: str) -> int | None:
        """Shortest length from which the Resonance block is faster at every longer measured length."""
        measured = [r for r in rows if f"{baseline}_over_resonance" in r]
        for i, r in enumerate(measured):
            if all(later[f"{baseline}_over_resonance"] > 1 for later in measured[i:]):
                return r["length"]
        return None

    print(f"\n{'length':>7} {'batch':>5} {'reson ms':>9} {'eigen ms':>9} {'attn ms':>9} {'attn/res':>8} "
          f"{'dmas-attn ms':>12} {'res MiB':>8} {'attn MiB':>8} {'dmas-attn MiB':>13}", file=sys.stderr)
    for r in rows:
        print(f"{r['length']:>7} {r['batch']:>5} {r['resonance_ms']!s:>9} {r['eigenstate_ms']!s:>9} "
              f"{r['attention_ms']!s:>9} {r.get('attention_over_resonance')!s:>8} {r['attention_dmas_ms']!s:>12} "
              f"{r['resonance_peak_mib']!s:>8} {r['attention_peak_mib']!s:>8} {r['attention_dmas_peak_mib']!s:>13}",
              file=sys.stderr)
    import torch

    print(json.dumps({
        "bench": "spectral", "width": args.width, "heads": args.heads, "tokens_per_batch": TOKENS,
        "threads": 1, "torch": torch.__version__,
        "parameters": {kind: next((r["parameters"] for r in results.values()
                                   if r["kind"] == kind and "parameters" in r), None) for kind in KINDS},
        "rows": rows,
        "crossover_length": {"attention": crossover("attention"), "attention_dmas": crossover("attention_dmas")},
        "seconds": round(time.perf_counter() - started, 1),
    }))


if __name__ == "__main__":
    main()
