"""`perslm-voice devices`: audio devices, the default ones, and why there are none."""

from __future__ import annotations

import click
from rich.table import Table

from ..audio.devices import DeviceReport, list_devices
from .common import console, json_option, print_json


@click.command()
@json_option
def devices(as_json: bool) -> None:
    """List audio input and output devices and the defaults; say why there are none.

    Exits 0 even when there are none: having no microphone is a normal case (typed input still works).
    """
    report = list_devices()
    if as_json:
        print_json(report.to_dict())
        return
    _print(report)


def _print(report: DeviceReport) -> None:
    if report.portaudio_version:
        console.print(f"PortAudio: {report.portaudio_version}", markup=False)
    for title, rows, default in (
        ("Input devices (microphones)", report.inputs, report.default_input),
        ("Output devices (speakers)", report.outputs, report.default_output),
    ):
        if not rows:
            console.print(f"{title}: none", markup=False)
            continue
        table = Table(title=title, title_justify="left")
        for column in ("", "index", "name", "host API", "channels", "rate (Hz)"):
            table.add_column(column)
        for d in rows:
            channels = d.max_input_channels if "Input" in title else d.max_output_channels
            table.add_row(
                "*" if d.index == default else "",
                str(d.index),
                d.name,
                d.hostapi,
                str(channels),
                f"{d.default_samplerate_hz:g}",
            )
        console.print(table)
    if report.problem:
        console.print(report.problem, markup=False)
        console.print("Voice input is off; typed input still works.", markup=False)
    elif report.inputs:
        console.print("* the default device; choose another with --device-index N", markup=False)
