"""The attention-OCGAN ablation: one setting changed at a time against the first recipe.

Every setting is a YAML file, ``configs/ablation/<name>.yaml``: the first recipe (the model's defaults
until 2026-12-04, ``configs/attention/first-recipe.yaml``) with one change, its first comment line
saying what differs; and a protocol table of its own, ``<tag>-abl-<name>_attn-ocgan.csv`` with the
``.metrics.jsonl`` beside it. The baseline is the main run's ``<tag>_attn-ocgan.csv`` in the same
folder (``tables_folder``), which must have been trained with the first recipe (the CIFAR-10 and
MNIST tables of 2026 were). The
table has, per setting, the AUC of each ablation class, the mean over the classes it has, the change
of that mean against the first recipe on the same classes, and per class the masks' area and
decisiveness on normal test images and the AUC of each GAN alone; a dot plot goes beside it. A
reference for the noise of a single seed comes from the same files: how far the first GAN inside
attn-ocgan (vanilla OCGAN's recipe, its weights never touched by the attention branch) lands from
the vanilla ``ocgan`` run of the same class. ``ablation_cell_jobs`` trains the missing cells.
"""
from __future__ import annotations

import datetime
import shlex
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...config import load_config_file, run_config_from_dict
from ...errors import UserError
from ...registry import get_spec
from ...reference import CLASS_NAMES
from ...utils.io import atomic_path, atomic_write_text
from ..processes import Job, exit_status, protocol_command, run_jobs
from ..runner import check_classes
from ..tables import metrics_log_path, read_metrics_log, read_rows, row_selection

DEFAULTS = "first recipe (T 0.5, pseudo-anomaly guide, area prior 1.0 to 0.5, warm-up 2, no reset)"
MODEL = "attn-ocgan"


@dataclass(frozen=True)
class AblationSetting:
    """One ablation setting: ``configs/ablation/<name>.yaml``, trained as tag ``<tag>-abl-<name>``."""

    name: str
    description: str  # what differs from the first recipe: the file's first comment line
    path: Path
    values: dict  # the file's config sections (model, train, model_args)

    @property
    def changes(self) -> dict:
        """The model arguments whose value differs from the first recipe's (the ablation's baseline)."""
        return {key: value for key, value in (self.values.get("model_args") or {}).items() if value != first_recipe_value(key)}

    @property
    def flags(self) -> str:
        """The changes as the equivalent protocol flags beside the first recipe's config, e.g.
        '--model-arg mask_area_weight=0'."""
        return " ".join(f"--model-arg {key}={str(value).lower() if isinstance(value, bool) else value}"
                        for key, value in self.changes.items())


def first_recipe_value(key: str):
    """The attention model's option ``key`` in the first recipe: its former default where the default
    changed since (``former_defaults``), else today's default."""
    spec = get_spec(MODEL)
    return spec.former_defaults[key] if key in spec.former_defaults else getattr(spec.config_class(), key)


def read_settings(folder: Path) -> dict[str, AblationSetting]:
    """{name: setting} of every ``*.yaml`` in ``folder``, sorted by name; each must be a valid
    attn-ocgan config that changes at least one model argument."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not paths:
        raise UserError(f"no ablation settings (*.yaml) in {folder}; run from the repository root or pass --configs")
    settings = {}
    for path in paths:
        values = load_config_file(path)
        config = run_config_from_dict(values, where=str(path))
        comments = [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
        setting = AblationSetting(path.stem, comments[0] if comments else "", path, values)
        if config.model != MODEL or not setting.changes:
            raise UserError(f"{path} must set model: {MODEL} and the model_args it changes against the first recipe")
        settings[path.stem] = setting
    return settings


def class_names(tag: str) -> tuple[str, ...]:
    return CLASS_NAMES["cifar10" if tag.startswith("cifar10") else "mnist"]


def tables_folder(results_dir: Path, tag: str) -> Path:
    """The folder holding the baseline table ``<tag>_attn-ocgan.csv``: ``results_dir`` itself or the one
    dataset folder below it that has it (the protocol runner files tables as ``RESULTS/<dataset>/``);
    the settings' tables are beside it."""
    results_dir, name = Path(results_dir), f"{tag}_{MODEL}.csv"
    if (results_dir / name).is_file():
        return results_dir
    found = sorted(path.parent for path in results_dir.glob(f"*/{name}"))
    if len(found) > 1:
        raise UserError(f"{name} is in several folders ({', '.join(str(p) for p in found)}); pass one as --results")
    if not found:
        raise UserError(f"no {name} in {results_dir} or its dataset folders; run the first recipe's protocol "
                        f"(attn-ocgan protocol --config configs/attention/first-recipe.yaml --tag {tag} ...) before the ablation table")
    return found[0]


def read_setting(results_dir: Path, tag: str, model: str = MODEL, seed: int = 0) -> tuple[dict, dict]:
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


def ablation_markdown(results_dir: Path, tag: str, classes: list[int], settings: dict[str, AblationSetting],
                      command: str) -> tuple[str, dict]:
    """(Markdown table, {row label: summary_row}); the baseline table must have rows."""
    names = class_names(tag)
    baseline_aucs, baseline_metrics = read_setting(results_dir, tag)
    if not baseline_aucs:
        raise UserError(f"{results_dir / (tag + '_attn-ocgan.csv')} has no rows; run the first recipe's protocol "
                        f"(attn-ocgan protocol --config configs/attention/first-recipe.yaml --tag {tag} ...) before the ablation table")
    rows = {DEFAULTS: summary_row(baseline_aucs, baseline_metrics, classes, None)}
    for name, setting in settings.items():
        aucs, metrics = read_setting(results_dir, f"{tag}-abl-{name}")
        rows[f"{name}: {setting.description}" if setting.description else name] = summary_row(aucs, metrics, classes, baseline_aucs)
    per = " / ".join(names[k] for k in classes)
    header = ["setting", *(names[k] for k in classes), "mean", "Δ mean vs defaults", f"mask area ({per})",
              f"decisiveness ({per})", f"first GAN alone ({per})", f"masked GAN alone ({per})"]
    selections = sorted({row_selection(r) for r in read_rows(results_dir / f"{tag}_attn-ocgan.csv")})
    tables = [results_dir / f"{tag}_attn-ocgan.csv"] + [results_dir / f"{tag}-abl-{name}_attn-ocgan.csv" for name in settings]
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
    lines += ["", f"Settings (each is `attn-ocgan protocol ... --tag {tag}-abl-<name> --config <its file>`, the file "
              "setting these model arguments):", ""]
    lines += [f"- `{name}`: `{setting.flags}` (`{setting.path.as_posix()}`)" for name, setting in settings.items()]
    lines += ["", "Produced by:", "", f"    {command}", "", f"Date: {datetime.date.today().isoformat()}; "
              f"the machines of each cell are in its CSV.", ""]
    return "\n".join(lines), rows


def plot_ablation(rows: dict, classes: list[int], names, out: Path) -> None:
    """Dot plot of the per-class AUCs per setting, with the mean masks' area below."""
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


def write_ablation(results_dir: Path, tag: str, classes: list[int], settings: dict[str, AblationSetting], out: Path,
                   command: str) -> int:
    """Write the table (``out``) and its plot (``out`` with .png); returns how many settings have rows."""
    text, rows = ablation_markdown(Path(results_dir), tag, classes, settings, command)
    atomic_write_text(Path(out), text)
    plot_ablation(rows, classes, class_names(tag), Path(out).with_suffix(".png"))
    return sum(row["n"] > 0 for row in rows.values()) - 1


RUN_FORBIDDEN = ("--model", "--classes", "--seeds", "--tag", "--results", "--config")


def missing_cells(results_dir: Path, tag: str, settings: list[str], classes: list[int]) -> list[tuple[str, int]]:
    """(setting, class) pairs whose setting's CSV has no seed-0 row for the class, setting-major."""
    return [(name, k) for name in settings for k in classes
            if k not in read_setting(Path(results_dir), f"{tag}-abl-{name}")[0]]


def ablation_cell_jobs(cells: list[tuple[str, int]], settings: dict[str, AblationSetting], tag: str, results_dir: Path,
                       protocol_args: list[str], logs: Path) -> list[Job]:
    """One ``attn-ocgan protocol`` process per cell: the setting's config file and tag, seed 0."""
    for option in RUN_FORBIDDEN:
        if option in protocol_args:
            raise UserError(f"{option} is set by --run (settings x --classes, seed 0, tag {tag}-abl-<name>, --results, "
                            "--config of the setting); remove it from the arguments after --")
    return [Job(f"{name} class {k}",
                protocol_command("--model", MODEL, "--classes", str(k), "--seeds", "0", "--tag", f"{tag}-abl-{name}",
                                 "--results", str(results_dir), "--config", str(settings[name].path), *protocol_args),
                Path(logs) / f"{name}_class{k}.log")
            for name, k in cells]


def chosen_settings(settings: dict[str, AblationSetting], names_text: str | None) -> list[str]:
    """The settings named in a comma-separated list (None: all), refusing unknown names."""
    if names_text is None:
        return list(settings)
    chosen = [name.strip() for name in names_text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in settings]
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(settings)}")
    return chosen


def settings_lines(settings: dict[str, AblationSetting]) -> list[str]:
    """'name:--config PATH' per setting (``tools/device_protocols.sh`` passes the flags to protocol)."""
    return [f"{name}:--config {shlex.quote(setting.path.as_posix())}" for name, setting in settings.items()]


def run_ablation(settings: dict[str, AblationSetting], results_dir: Path, tag: str, classes: list[int], command: str,
                 out: Path | None = None, train: bool = False, setting_names: str | None = None, jobs: int = 2,
                 logs: Path = Path("logs/ablation"), protocol_args=(), echo: Callable[[str], None] = print) -> int:
    """Write the table (default ``ablation_<tag>_attn-ocgan.md`` beside the tables). With ``train``,
    first start one ``attn-ocgan protocol`` process per missing (setting, class) cell, ``jobs`` at a
    time (``--results results_dir`` and ``protocol_args`` each), redrawing the table after each.
    Returns 0, or 1 when a cell failed."""
    check_classes(classes, class_names(tag), tag)
    if setting_names is not None and not train:
        raise UserError("--settings chooses the settings --run trains (the table shows them all); add --run or drop it")
    tables = tables_folder(Path(results_dir), tag)
    out = Path(out or tables / f"ablation_{tag}_attn-ocgan.md")

    def write_table(*_):
        ran = write_ablation(tables, tag, classes, settings, out, command)
        echo(f"wrote {out} and {out.with_suffix('.png')} ({ran} settings run)")

    if not train:
        write_table()
        return 0
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    names = chosen_settings(settings, setting_names)
    cells = ablation_cell_jobs(missing_cells(tables, tag, names, classes), settings, tag, Path(results_dir),
                               list(protocol_args), Path(logs))
    write_table()
    echo(f"{len(cells)} cells to train: " + (", ".join(job.label for job in cells) or "none"))
    failed = run_jobs(cells, jobs, Path.cwd(), on_done=write_table)
    write_table()
    return exit_status(failed)
