"""The attention-OCGAN ablation table: one setting changed at a time against the defaults.

Every setting is a protocol table of its own, ``results/<tag>-abl-<name>_attn-ocgan.csv`` (with the
``.metrics.jsonl`` beside it); the defaults are the main run's ``results/<tag>_attn-ocgan.csv``.
This script reads them (it trains nothing) and writes one Markdown table with, per setting, the
AUC of each ablation class, the mean over the classes it has, the change of that mean against the
defaults on the same classes, and per class the masks' area and decisiveness on normal test images
and the AUC of each GAN alone; a dot plot of the per-class AUCs goes beside it (.png). A reference for the
noise of a single seed is computed from the same files: how far the first GAN inside attn-ocgan
(vanilla OCGAN's recipe, its weights never touched by the attention branch) lands from the vanilla
``ocgan`` run of the same class.

    python benchmarks/ablation_table.py --out results/ablation_cifar10-jpeg_attn-ocgan.md

The settings and their protocol flags (``--print-settings`` lists them as ``name:flags`` lines for
tools/device_protocols.sh). ``--run`` trains the missing cells itself (every setting x class not yet
in its setting's CSV), ``--jobs`` protocol processes at a time, and rewrites the table after each
cell; arguments after ``--`` go to every ``attn-ocgan protocol`` call:

    python benchmarks/ablation_table.py --run --jobs 2 -- --dataset folder \\
        --data-root ../shared/data/cifar10-jpeg --epochs 25 --eval-every 0 --threads 1
"""
from __future__ import annotations

import argparse
import datetime
import shlex
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from attn_ocgan.utils.io import atomic_path, atomic_write_text  # noqa: E402
from attn_ocgan.protocol.processes import Job, exit_status, protocol_command, run_jobs  # noqa: E402
from attn_ocgan.protocol.runner import check_classes, parse_int_list  # noqa: E402
from attn_ocgan.protocol.tables import metrics_log_path, read_metrics_log, read_rows, row_selection  # noqa: E402
from attn_ocgan.errors import UserError  # noqa: E402
from attn_ocgan.reference import CLASS_NAMES  # noqa: E402

# name: (what differs from the defaults, the protocol flags that make it so)
SETTINGS = {
    "temperature1": ("temperature 1.0 (defaults: 0.5)", "--temperature 1.0"),
    "noguide": ("guiding classifier off: only the area prior trains the masks", "--model-arg guide_weight=0"),
    "noarea": ("mask area prior off: nothing stops trivial masks", "--model-arg mask_area_weight=0"),
    "nowarmup": ("masked GAN trains from epoch 1 (defaults: waits 2 epochs)", "--mask-warmup-epochs 0"),
    "reset10": ("masked GAN re-initialised at epoch 10", "--reset-masked-gan-at 10"),
    "complement": ("complement game on (guide sees x * (1 - M)), area weight 10",
                   "--model-arg mask_complement_weight=1 --model-arg mask_area_weight=10"),
}
DEFAULTS = "defaults (T 0.5, guide on, area prior 1.0 to 0.5, warm-up 2, no reset)"


def class_names(tag: str) -> tuple[str, ...]:
    return CLASS_NAMES["cifar10" if tag.startswith("cifar10") else "mnist"]


def read_setting(results_dir: Path, tag: str, model: str = "attn-ocgan", seed: int = 0) -> tuple[dict, dict]:
    """({class: AUC}, {class: metrics}) of one protocol table and its metrics log, for one seed."""
    csv_path = results_dir / f"{tag}_{model}.csv"
    if not csv_path.is_file():
        return {}, {}
    aucs = {int(r["normal_class"]): float(r["auc"]) for r in read_rows(csv_path)
            if r["model"] == model and r["dataset"] == tag and int(r["seed"]) == seed}
    metrics = {int(cell["normal_class"]): cell["metrics"] for cell in read_metrics_log(metrics_log_path(csv_path))
               if int(cell["seed"]) == seed}
    return aucs, metrics


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def summary_row(aucs: dict, metrics: dict, classes: list[int], baseline: dict | None) -> dict:
    """The cells of one setting: AUC per class, mean over those present, change against the
    defaults on the classes both have, and per class the masks' statistics and each GAN's AUC
    (None where a class has no logged metrics)."""
    present = [k for k in classes if k in aucs]
    shared = [k for k in present if baseline is not None and k in baseline]
    delta = (_mean(aucs[k] for k in shared) - _mean(baseline[k] for k in shared)) if shared else None

    def per_class(read):
        return [read(metrics[k]) if k in present and k in metrics else None for k in classes]

    return {
        "per_class": [aucs.get(k) for k in classes],
        "mean": _mean(aucs[k] for k in present), "n": len(present),
        "delta": delta, "n_delta": len(shared),
        "area": per_class(lambda m: m.get("masks", {}).get("test_normal", {}).get("area")),
        "decisiveness": per_class(lambda m: m.get("masks", {}).get("test_normal", {}).get("decisiveness")),
        "first_gan": per_class(lambda m: (m.get("auc_per_score_component") or {}).get("first_gan")),
        "masked_gan": per_class(lambda m: (m.get("auc_per_score_component") or {}).get("masked_gan")),
    }


def single_seed_noise(results_dir: Path, tag: str) -> tuple[float, float, int] | None:
    """(median, max, n classes) of |AUC of attn-ocgan's first GAN - AUC of the vanilla ocgan run|:
    the same recipe trained twice with different random streams."""
    vanilla, _ = read_setting(results_dir, tag, model="ocgan")
    _, metrics = read_setting(results_dir, tag)
    gaps = [abs(m["auc_per_score_component"]["first_gan"] - vanilla[k]) for k, m in metrics.items()
            if k in vanilla and m.get("auc_per_score_component")]
    return (statistics.median(gaps), max(gaps), len(gaps)) if gaps else None


def ablation_markdown(results_dir: Path, tag: str, classes: list[int], command: str) -> tuple[str, dict]:
    names = class_names(tag)
    baseline_aucs, baseline_metrics = read_setting(results_dir, tag)
    if not baseline_aucs:
        raise UserError(f"{results_dir / (tag + '_attn-ocgan.csv')} has no rows; run the defaults' protocol "
                        f"(attn-ocgan protocol --tag {tag} ...) before the ablation table")
    rows = {DEFAULTS: summary_row(baseline_aucs, baseline_metrics, classes, None)}
    for name, (what, _) in SETTINGS.items():
        aucs, metrics = read_setting(results_dir, f"{tag}-abl-{name}")
        rows[f"{name}: {what}"] = summary_row(aucs, metrics, classes, baseline_aucs)
    per = " / ".join(names[k] for k in classes)
    header = ["setting", *(names[k] for k in classes), "mean", "Δ mean vs defaults", f"mask area ({per})",
              f"decisiveness ({per})", f"first GAN alone ({per})", f"masked GAN alone ({per})"]
    selections = sorted({row_selection(r) for r in read_rows(results_dir / f"{tag}_attn-ocgan.csv")})
    tables = [results_dir / f"{tag}_attn-ocgan.csv"] + [results_dir / f"{tag}-abl-{name}_attn-ocgan.csv" for name in SETTINGS]
    negatives = sorted({r.get("negatives") or "not recorded" for path in tables if path.is_file() for r in read_rows(path)})
    lines = [f"# Attention OCGAN ablation on {tag} (protocol 2, seed 0, model: {', '.join(selections)}, "
             f"negatives: {', '.join(negatives)})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in rows.items():
        mean = "not run" if row["n"] == 0 else _fmt(row["mean"], 4) + ("" if row["n"] == len(classes) else f" ({row['n']}/{len(classes)})")
        delta = "" if label == DEFAULTS else _fmt(row["delta"], 3, signed=True) + (
            f" ({row['n_delta']} cl.)" if row["delta"] is not None and row["n_delta"] != len(classes) else "")
        cells = [label, *(_fmt(v) for v in row["per_class"]), mean, delta,
                 *(" / ".join(_fmt(v, 2) for v in row[key]) for key in ("area", "decisiveness", "first_gan", "masked_gan"))]
        lines.append("| " + " | ".join(cells) + " |")
    noise = single_seed_noise(results_dir, tag)
    lines += ["", "Each setting changes one thing against the defaults (its flags below); the rest of the recipe and "
              "the seed are the main run's. Mask area, decisiveness (mean |M - 0.5|: 0 uniform grey, 0.5 binary) and "
              "the AUC of each GAN's error alone are per class, on normal test images ("
              "— where a cell's metrics were not logged: the defaults' class-0 cell predates the metrics log). Δ compares means over the classes both rows have."]
    if noise:
        lines += ["", f"**Single-seed noise.** The first GAN inside attn-ocgan is vanilla OCGAN's recipe, trained with another "
                  f"random stream; its AUC lands a median {noise[0]:.3f} (max {noise[1]:.3f}) from the vanilla `ocgan` run of "
                  f"the same class ({noise[2]} classes of {tag}). A change of one setting within that range is not "
                  "distinguishable from a change of seed."]
    lines += ["", "Settings (each is `attn-ocgan protocol ... --tag " + tag + "-abl-<name>` plus):", ""]
    lines += [f"- `{name}`: `{flags}`" for name, (_, flags) in SETTINGS.items()]
    lines += ["", "Produced by:", "", f"    {command}", "", f"Date: {datetime.date.today().isoformat()}; "
              f"the machines of each cell are in its CSV.", ""]
    return "\n".join(lines), rows


def plot(rows: dict, classes: list[int], names, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["defaults" if i == 0 else label.split(":")[0] for i, label in enumerate(rows)]
    fig, (ax, area_ax) = plt.subplots(2, 1, figsize=(1.1 * len(rows) + 2, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [2.2, 1]})
    for j, k in enumerate(classes):
        xs = [i + (j - (len(classes) - 1) / 2) * 0.12 for i in range(len(rows))]
        ys = [row["per_class"][j] for row in rows.values()]
        ax.scatter([x for x, y in zip(xs, ys) if y is not None], [y for y in ys if y is not None], label=names[k], s=28)
    means = [row["mean"] if row["n"] == len(classes) else None for row in rows.values()]  # partial means mislead
    ax.scatter([i for i, m in enumerate(means) if m is not None], [m for m in means if m is not None],
               marker="_", s=400, color="black", label="mean (rows with every class)")
    ax.set_ylabel("ROC AUC")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=8, ncol=len(classes) + 1, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    areas = [_mean(row["area"]) for row in rows.values()]
    area_ax.bar([i for i, a in enumerate(areas) if a is not None], [a for a in areas if a is not None], width=0.5, color="tab:gray")
    area_ax.set_ylim(0, 1)
    area_ax.set_ylabel("mask area\n(normal test,\nmean of classes)")
    area_ax.set_xlim(-0.5, len(rows) - 0.5)
    area_ax.set_xticks(range(len(rows)), labels, rotation=20)
    fig.tight_layout()
    with atomic_path(out) as temporary:
        fig.savefig(temporary, dpi=120, format="png")
    plt.close(fig)


RUN_FORBIDDEN = ("--model", "--classes", "--seeds", "--tag", "--results")


def missing_cells(results_dir: Path, tag: str, settings: list[str], classes: list[int]) -> list[tuple[str, int]]:
    """(setting, class) pairs whose setting's CSV has no seed-0 row for the class, setting-major."""
    return [(name, k) for name in settings for k in classes
            if k not in read_setting(results_dir, f"{tag}-abl-{name}")[0]]


def cell_jobs(cells: list[tuple[str, int]], tag: str, results_dir: Path, protocol_args: list[str], logs: Path) -> list[Job]:
    """One ``attn-ocgan protocol`` process per cell: the setting's tag and flags, seed 0."""
    for option in RUN_FORBIDDEN:
        if option in protocol_args:
            raise UserError(f"{option} is set by --run (settings x --classes, seed 0, tag {tag}-abl-<name>, --results); "
                            "remove it from the arguments after --")
    return [Job(f"{name} class {k}",
                protocol_command("--model", "attn-ocgan", "--classes", str(k), "--seeds", "0", "--tag", f"{tag}-abl-{name}",
                                 "--results", str(results_dir), *shlex.split(SETTINGS[name][1]), *protocol_args),
                logs / f"{name}_class{k}.log")
            for name, k in cells]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="Folder of the protocol tables.")
    parser.add_argument("--tag", default="cifar10-jpeg", help="Tag of the defaults' table; settings are <tag>-abl-<name>.")
    parser.add_argument("--classes", default="0,1,9", help="Ablation classes (columns).")
    parser.add_argument("--out", default=None, help="Markdown to write (default results/ablation_<tag>_attn-ocgan.md); a .png goes beside it.")
    parser.add_argument("--print-settings", action="store_true", help="Print 'name:flags' per setting and exit.")
    parser.add_argument("--run", action="store_true", help="Train the missing cells first (protocol arguments after --).")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="With --run: which settings, comma-separated.")
    parser.add_argument("--jobs", type=int, default=2, help="With --run: protocol processes at a time.")
    parser.add_argument("--logs", default="logs/ablation", help="With --run: one log per cell.")
    parser.add_argument("protocol_args", nargs=argparse.REMAINDER, help="With --run: -- then arguments for every 'attn-ocgan protocol'.")
    args = parser.parse_args(argv)
    if args.print_settings:
        print("\n".join(f"{name}:{flags}" for name, (_, flags) in SETTINGS.items()))
        return 0
    protocol_args = args.protocol_args[1:] if args.protocol_args[:1] == ["--"] else args.protocol_args
    results_dir = Path(args.results)
    out = Path(args.out or results_dir / f"ablation_{args.tag}_attn-ocgan.md")
    # The table's own command (what re-draws it from the CSVs), without the training options.
    table_options = [(option, value) for option, value, default in (
        ("--results", args.results, "results"), ("--tag", args.tag, "cifar10-jpeg"), ("--classes", args.classes, "0,1,9"),
        ("--out", args.out, None)) if value != default]
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(x for pair in table_options for x in pair)])
    try:
        classes = parse_int_list(args.classes, "classes")
        check_classes(classes, class_names(args.tag), args.tag)
        ablation_markdown(results_dir, args.tag, classes, command)  # the defaults' table exists: fail before training
        jobs = []
        if args.run:
            settings = [name.strip() for name in args.settings.split(",") if name.strip()]
            unknown = [name for name in settings if name not in SETTINGS]
            if unknown:
                raise UserError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
            if args.jobs < 1:
                raise UserError(f"--jobs must be >= 1, got {args.jobs}")
            jobs = cell_jobs(missing_cells(results_dir, args.tag, settings, classes), args.tag, results_dir,
                             protocol_args, Path(args.logs))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def write_table(*_):
        text, rows = ablation_markdown(results_dir, args.tag, classes, command)
        atomic_write_text(out, text)
        plot(rows, classes, class_names(args.tag), out.with_suffix(".png"))
        print(f"wrote {out} and {out.with_suffix('.png')} ({sum(row['n'] > 0 for row in rows.values()) - 1} settings run)", flush=True)

    failed = []
    if args.run:
        print(f"{len(jobs)} cells to train: " + (", ".join(job.label for job in jobs) or "none"), flush=True)
        failed = run_jobs(jobs, args.jobs, REPO, on_done=write_table)
    write_table()
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
