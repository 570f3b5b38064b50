"""Observed order of convergence of the PDE scheme against closed forms.

Run: ``python benchmarks/pde_order.py``. Two tables (h and dt halved together):

- LQ game (``lq-continuous-v0`` on [-6, 6]): errors of the feedback on |x - mbar| <= 2, of the
  density (L1) and of the mean, against ``reference_solvers.pde.analytic.lq_solution``;
- two-population LQ game (``lq-2pop-continuous-v0``): the same errors, maximised over both populations,
  against the semi-analytic ``lq2pop_solution``;
- travelling-wave manufactured solution (torus): max errors of u and m.
"""
from __future__ import annotations

import argparse

from reference_solvers.pde.convergence import order_table


def show(title, rows, keys, no_order=()):
    print(title)
    head = f"{'n':>6s}" + "".join(f" {k:>12s} {'order':>6s}" for k in keys)
    print(head)
    for r in rows:
        line = f"{r['n']:6d}"
        for k in keys:
            o = None if k in no_order else r.get(f"order_{k}")
            line += f" {r[k]:12.3e} {'' if o is None else f'{o:6.2f}':>6s}"
        print(line)
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[60, 120, 240, 480], help="cells (LQ)")
    ap.add_argument("--wave-sizes", type=int, nargs="+", default=[40, 80, 160, 320], help="cells (wave)")
    args = ap.parse_args(argv)
    show("LQ game (nt = n/2): feedback error on |x - mbar| <= 2, density L1 error, mean error",
         order_table("lq", args.sizes), ["feedback", "density_L1", "mean"], no_order={"mean"})
    print("(the exact mean is constant; its error is at round-off level, so it has no order)\n")
    show("two-population LQ game (nt = n/2): the same errors, the larger of the two populations'",
         order_table("lq2pop", args.sizes), ["feedback", "density_L1", "mean"])
    show("travelling-wave manufactured solution (nt = n): max |u - u_exact|, max |m - m_exact|",
         order_table("wave", args.wave_sizes), ["u", "m"])


if __name__ == "__main__":
    main()
