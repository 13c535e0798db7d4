"""The Prometheus text exposition format (version 0.0.4), written by hand:
a few families of samples need no client library at run time (tests read
the answer with the official ``prometheus_client`` parser)."""

import math

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value):
    if value is None:
        return "NaN"
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render(families):
    """The text of ``families``: (name, type, help, samples), a sample being
    (labels dict, value); a counter's samples are named ``<name>_total``."""
    lines = []
    for name, kind, help_text, samples in families:
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} {kind}")
        sample_name = f"{name}_total" if kind == "counter" else name
        for labels, value in samples:
            text = ",".join(f'{key}="{_escape_label(val)}"' for key, val in sorted(labels.items()))
            lines.append(
                f"{sample_name}{{{text}}} {_number(value)}" if text else f"{sample_name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"
