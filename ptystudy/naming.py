"""Names and colours of arms, metrics, components and doses, as every table, figure and log
line shows them: the one place to rename something for readers."""

from __future__ import annotations

ARM_COLOURS = {
    "pinn": "tab:blue",
    "pinn_shared": "tab:purple",
    "pinn_gs1": "tab:cyan",
    "supervised": "tab:orange",
    "lsqml": "tab:green",
    "flat": "tab:gray",
}
ARM_TITLES = {
    "pinn": "PtychoPINN gs2",
    "pinn_shared": "gs2 shared generator (our variant)",
    "pinn_gs1": "PtychoPINN gs1",
    "supervised": "supervised (PtychoNN)",
    "lsqml": "LSQML (pty-chi)",
    "flat": "flat (no information)",
}
ARM_SHORT_TITLES = {
    "pinn": "PINN gs2",
    "pinn_shared": "shared gs2",
    "pinn_gs1": "PINN gs1",
    "supervised": "supervised",
    "lsqml": "LSQML",
    "flat": "flat",
}
"""Names short enough for a figure's cell; the figure's legend or caption spells them out."""
METRIC_TITLES = {
    "mae": "MAE",
    "mse": "MSE",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "ms_ssim": "MS-SSIM",
    "frc50": "FRC 0.5 resolution (fraction of Nyquist)",
    "frc_halfbit": "FRC 1/2-bit resolution (fraction of Nyquist)",
    "frc50_onset": "FRC 0.5 band onset (fraction of Nyquist)",
    "frc_halfbit_onset": "FRC 1/2-bit band onset (fraction of Nyquist)",
}
COMPONENT_UNITS = {"amplitude": "amplitude (a.u.)", "phase": "phase (rad)"}


def arm_title(arm: str) -> str:
    """The arm's name for readers, e.g. ``PtychoPINN gs2`` for ``pinn``."""
    return ARM_TITLES.get(arm, arm)


def arm_short_title(arm: str) -> str:
    """The arm's name in a few characters, e.g. ``shared gs2`` for ``pinn_shared``."""
    return ARM_SHORT_TITLES.get(arm, arm)


def arm_rank(arm: str) -> tuple[int, str]:
    """Sort key putting arms in the study's order (pinn, pinn_shared, pinn_gs1, supervised, lsqml), others after."""
    order = list(ARM_TITLES)
    return (order.index(arm) if arm in order else len(order), arm)


def dose_text(dose: float) -> str:
    """Short human form of a dose for names and titles, e.g. ``1e4``."""
    if dose < 10:
        return f"{dose:g}"
    exponent = f"{dose:.0e}".replace("e+0", "e").replace("e+", "e")
    return exponent if float(exponent) == dose else str(int(dose))
