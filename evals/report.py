"""The figures of one or two eval runs, shared by the comparison page, the API and the
``prompts eval`` command (which prints them as a text table)."""

from __future__ import annotations

from evals.models import EvalResult, EvalRun
from evals.selectors import ComparedItem, compare_runs


def run_summary(run: EvalRun) -> dict:
    return {"run": run.pk, "version": run.version.label, "status": run.status, "total": run.total, "done": run.done,
            "passed": run.passed, "errors": run.errors, "pass_rate": run.pass_rate, "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "mean_tokens": (run.tokens_in + run.tokens_out) / run.done if run.done else None,
            "mean_latency_ms": run.mean_latency_ms, "provider": run.provider, "model": run.model}


def failed_checks(result: EvalResult | None) -> str:
    if result is None:
        return "—"
    if result.status == EvalResult.Status.ERROR and result.error:
        return result.error[:60]
    failing = [check["type"] for check in result.checks if check["verdict"] in ("fail", "error")]
    return ", ".join(failing) or "—"


def verdict_word(result: EvalResult | None) -> str:
    if result is None or result.passed is None:
        return "—"
    return "pass" if result.passed else "FAIL"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def text_table(runs: list[EvalRun]) -> str:
    """Per-item lines then the summary, for one run or two side by side."""
    rows: list[ComparedItem]
    if len(runs) == 2:
        rows = sorted(compare_runs(a=runs[0], b=runs[1]), key=lambda row: row.item_id)
    else:
        rows = [ComparedItem(r.item_id, r.item.summary, r, None)
                for r in runs[0].results.select_related("item").order_by("item_id")]
    lines = []
    header = f"{'item':<6} {'query / variables':<44}"
    for run in runs:
        header += f" | {run.version.label:<10} {'tokens':>7} {'ms':>6} {'failed checks':<24}"
    lines += [header, "-" * len(header)]
    for row in rows:
        line = f"{row.item_id:<6} {row.summary[:44]:<44}"
        for result in ([row.a, row.b] if len(runs) == 2 else [row.a]):
            tokens = (result.tokens_in + result.tokens_out) if result else None
            latency = _number(result.latency_ms if result else None)
            line += f" | {verdict_word(result):<10} {_number(tokens):>7} {latency:>6} {failed_checks(result)[:24]:<24}"
        lines.append(line)
    lines.append("-" * len(header))
    for run in runs:
        summary = run_summary(run)
        lines.append(f"{summary['version']}: pass rate {_rate(summary['pass_rate'])} ({run.passed}/{run.done}), "
                     f"errors {run.errors}, mean tokens {_number(summary['mean_tokens'])}, "
                     f"mean latency {_number(summary['mean_latency_ms'])} ms ({run.provider} {run.model})")
    return "\n".join(lines)
