"""What bench/sfu/run and bench/sfu/profile share: where the binaries are,
the ceiling measurement, and how `parley load` is asked for a load and its
JSON summary read."""

import json
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PARLEY = os.environ.get("PARLEY_BIN", os.path.join(ROOT, "target", "release", "parley"))
CEILING = os.path.join(ROOT, "target", "release", "examples", "udp_forward_ceiling")


def ceiling():
    """µs per 1200-byte packet on core 0: batched receive, an AES-GCM seal,
    batched send, no protocol (the udp_forward_ceiling example)."""
    r = subprocess.run(["taskset", "-c", "0", CEILING, "300000", "1200", "sealed"],
                       capture_output=True, text=True, check=True)
    line = [l for l in r.stdout.splitlines() if l.startswith("ceiling_ns_per_packet")][0]
    return float(line.split()[1]) / 1000.0


def load_args(pubs, subs, layers, seconds, server_pid):
    """`parley load` flags for a load measured on `server_pid`, with the
    summary as JSON on standard output (single-layer video at 1 Mbit/s)."""
    args = ["--publishers", str(pubs), "--subscribers", str(subs),
            "--layers", str(layers), "--duration", str(seconds),
            "--measure-pid", str(server_pid), "--json", "-"]
    if layers == 1:
        args += ["--video-kbps", "1000"]
    return args


def load_summary(stdout):
    """The JSON summary from `parley load --json -` output."""
    return json.loads(stdout[stdout.index("{\n"):])
