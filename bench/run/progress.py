"""The line `genbench run` prints as each cell ends: status, family, method and its setting."""
from __future__ import annotations

from typing import Any

from bench.results.labels import setting_label

WHAT_WIDTH = 44  # "quant 4-bit, channel, mse" and most pipelines fit; longer ones push the rest


def cell_setting(result: dict[str, Any]) -> str:
    """'quant 4-bit, channel, mse': the method and its headline settings (all of its settings
    when none is a headline one, e.g. a plugin method's); pipelines show every step."""
    label = setting_label(result, extra_keys=())
    if label == "-":
        label = setting_label(result)
    steps = label.count(" -> ")
    return label if steps else f"{result.get('method', '?')} {label}"


def cell_line(record: dict[str, Any], measured: int = 0, unstable: int = 0) -> str:
    """'ok     gan   quant 4-bit, channel, mse     seed=0   2.1s 5edfe0d85bbc' (+ the error)."""
    result = record["result"]
    line = (f"{result.get('status', '?'):6s} {result['family']:5s} "
            f"{cell_setting(result):{WHAT_WIDTH}s} seed={result['seed']} "
            f"{record.get('seconds', 0.0):6.1f}s {record['cell_id']}")
    if record.get("extends"):  # a resume that measured runtimes added to the config
        line += f" +runtimes {','.join(record.get('runtimes', []))}"
    if result.get("error"):
        line += f" {result['error']}"
    if unstable:
        line += f" [{unstable} of {measured} latency rows unstable]"
    return line
