"""Run every benchmark script at one scale and collect the results in RESULTS.md.

``--scale small`` checks that everything runs (about 3 minutes on 2 cores);
``--scale full`` measures at the sizes the figures in the documentation
quote (15 to 20 minutes, and up to 4 GB of memory for the 100 million
ratings of ``bench_scale.py``). ``--only`` runs some of the scripts.

Each script runs in its own process with ``--markdown`` pointing at a scratch
file; its tables, with the command that produced them (the scratch file
left out) and the machine, then replace that script's section of the file
``--results`` (default ``benchmarks/RESULTS.md``, created if missing). The
sections live between the markers ``<!-- run_all:begin -->`` and
``<!-- run_all:end -->``, one pair of inner markers per script: a run
rewrites the sections of the scripts it ran and keeps the others, and
whatever the file holds outside the markers (tables appended by the
scripts' own ``--markdown``, notes) is left as it is.

Example::

    PYTHONPATH=. python benchmarks/run_all.py --scale small
    PYTHONPATH=. python benchmarks/run_all.py --scale full --only scale peers
"""

import argparse
import datetime
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import command_line, print_header

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"

# name -> (script, arguments at scale small, arguments at scale full)
SCRIPTS = {
    "scale": ("bench_scale.py",
              ["--sizes", "1M", "5M", "--k-size", "1M", "--repeats", "3",
               "--fit-inits", "random_from_data", "--bandwidth-mb", "512"],
              ["--sizes", "1M", "5M", "20M", "100M"]),
    "peers": ("bench_peers.py",
              ["--shapes", "20000x200", "--repeats", "2", "--budget", "20"],
              []),
    "kernels": ("bench_kernels.py",
                ["--n-ratings", "1000000", "--repeats", "3", "--course-repeats", "1"],
                []),
    "pure_scale": ("bench_pure_scale.py",
                   ["--n-ratings", "1000000"],
                   []),
    "io": ("bench_io.py",
           ["--lines", "1000000", "--repeats", "2"],
           []),
    "profile": ("profile_pass.py",
                ["--ratings", "2M", "--entries", "2M", "--turns", "3"],
                []),
    "init": ("bench_init.py",
             ["--n-users", "5000", "--n-items", "1000", "--n-ratings", "200000",
              "--seeds", "2"],
             []),
}

INTRO = """\
# Benchmark results

Figures measured by the scripts in `benchmarks/` (see `benchmarks/README.md`),
each with the command that produced it and the machine it ran on.
"""

BLOCK_INTRO = """\
## Results of run_all.py

Written by `benchmarks/run_all.py`: each run replaces the sections of the
scripts it ran. Timings are medians within one run, and every ratio compares
implementations measured in the same run; the machine was shared with other
work (its load average is printed with the figures), so absolute timings
vary from run to run by more than the ratios do.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=["small", "full"], default="small",
                        help="sizes to run at (default: %(default)s)")
    parser.add_argument("--only", nargs="+", choices=list(SCRIPTS), metavar="NAME",
                        help=f"run only these: {', '.join(SCRIPTS)} (default: all)")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md",
                        help="file of results to update (default: benchmarks/RESULTS.md)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the commands without running them")
    return parser.parse_args(argv)


def display_path(path):
    """``path`` relative to the working folder when inside it, else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(Path(path).resolve()) if relative.startswith("..") else relative


def command_for(name, scale):
    script, small, full = SCRIPTS[name]
    arguments = small if scale == "small" else full
    return [sys.executable, display_path(HERE / script)] + arguments


def shown(command):
    return " ".join(shlex.quote(arg) for arg in [os.path.basename(command[0])] + command[1:])


def demote(markdown, scratch):
    """The script's appended text as a section body: its title dropped, headings one
    level down, the scratch file left out of the command."""
    lines = markdown.strip("\n").splitlines()
    if lines and lines[0].startswith("## "):
        lines = lines[1:]
    out = []
    for line in lines:
        line = line.replace(f" --markdown {shlex.quote(scratch)}", "")
        line = line.replace(f" --markdown {scratch}", "")
        out.append("#" + line if line.startswith("#") else line)
    return "\n".join(out).strip("\n")


def run_script(name, scale):
    """Run one script; return (section text or None, seconds, exit status)."""
    fd, scratch = tempfile.mkstemp(prefix=f"fastem-{name}-", suffix=".md")
    os.close(fd)
    command = command_for(name, scale) + ["--markdown", scratch]
    print(f"\n=== {name}: {shown(command[:-2])}\n", flush=True)
    start = time.perf_counter()
    try:
        status = subprocess.run(command).returncode
        seconds = time.perf_counter() - start
        text = Path(scratch).read_text()
    finally:
        os.unlink(scratch)
    if status != 0 or not text.strip():
        return None, seconds, status
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    script = SCRIPTS[name][0]
    section = (f"### {script}, scale {scale} ({stamp}, {seconds:.0f} s)\n\n"
               f"Written by `{command_line()}`.\n\n" + demote(text, scratch))
    return section, seconds, status


_SECTION = re.compile(r"<!-- run_all:(?P<name>[\w-]+):begin -->\n(?P<body>.*?)\n"
                      r"<!-- run_all:(?P=name):end -->", re.S)


def update_results(path, sections):
    """Replace the sections in ``sections`` (name -> text) inside the run_all block."""
    text = path.read_text() if path.is_file() else INTRO
    begin, end = text.find(BEGIN), text.find(END)
    if begin >= 0 and end > begin:
        before, after = text[:begin], text[end + len(END):]
        block = text[begin + len(BEGIN):end]
        # Text written into the block by hand is no section of a script: it is
        # kept, just before the block, never dropped.
        stray = _SECTION.sub("", block).replace(BLOCK_INTRO.rstrip("\n"), "").strip()
        if stray:
            before = before.rstrip("\n") + "\n\n" + stray + "\n\n"
    else:
        before, block, after = text.rstrip("\n") + "\n\n", "", "\n"
    existing = {m["name"]: m["body"] for m in _SECTION.finditer(block)}
    existing.update(sections)
    order = [name for name in SCRIPTS if name in existing]
    order += [name for name in existing if name not in SCRIPTS]
    parts = [BLOCK_INTRO.rstrip("\n")]
    for name in order:
        parts.append(f"<!-- run_all:{name}:begin -->\n{existing[name].strip()}\n"
                     f"<!-- run_all:{name}:end -->")
    path.write_text(before + BEGIN + "\n" + "\n\n".join(parts) + "\n" + END + after)


def main(argv=None):
    args = parse_args(argv)
    names = args.only or list(SCRIPTS)
    if args.dry_run:
        for name in names:
            print(shown(command_for(name, args.scale)))
        return
    print_header(f"fastem benchmarks, scale {args.scale}", {
        "scripts": " ".join(names), "results": display_path(args.results)})
    started = time.perf_counter()
    sections, summary, failed = {}, [], []
    for name in names:
        section, seconds, status = run_script(name, args.scale)
        if section is None:
            failed.append(name)
            summary.append(f"{name}: FAILED (exit status {status}) after {seconds:.0f} s; "
                           "its section is kept as it was")
        else:
            sections[name] = section
            summary.append(f"{name}: {seconds:.0f} s")
    if sections:
        update_results(args.results, sections)
    print(f"\n=== done in {time.perf_counter() - started:.0f} s")
    for line in summary:
        print("  " + line)
    if sections:
        print(f"results written to {display_path(args.results)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
