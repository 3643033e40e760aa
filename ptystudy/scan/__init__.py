"""Phases C and D: the physics of a scan, simulated or read from files (NPZ, PtychoPINN's
layout), its lattices, and the overlap views with their training corpora."""
