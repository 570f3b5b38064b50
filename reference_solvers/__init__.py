"""Reference solvers: certified equilibria of finite games (discrete) and PDE solutions (pde)."""
