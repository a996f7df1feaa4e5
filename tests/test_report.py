"""splatfilm.report: the one way the library tells the user anything while it works."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import splatfilm
from splatfilm import report

PACKAGE = Path(splatfilm.__file__).parent


def _under_type_checking(tree: ast.Module) -> set[ast.AST]:
    """The nodes inside `if TYPE_CHECKING:` blocks (imports there are for annotations only)."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                inside |= set(ast.walk(child))
    return inside


def test_library_modules_speak_only_through_report():
    said = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/") or rel == "report.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        annotations_only = _under_type_checking(tree)
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', '?')}"
            # `print` called, or passed on as a `log` default (SfM's steps, said while COLMAP's
            # stderr is silenced, reach the user: io.colmap_library.stderr_silenced; a result a
            # script reads, as render's "wrote film.mp4", is the CLI's to print).
            if isinstance(node, ast.Name) and node.id == "print":
                said.append(f"{where}: print")
            elif isinstance(node, ast.Call) and "tqdm" in ast.unparse(node.func):
                said.append(f"{where}: {ast.unparse(node.func)}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and node not in annotations_only:
                modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if any(m and m.split(".")[0] == "tqdm" for m in modules):
                    said.append(f"{where}: imports tqdm")
    assert not said, "say it with splatfilm.report (note, status, progress_bar): " + ", ".join(said)


def test_notes_and_status_lines_go_to_stderr(capsys):
    report.note("a.ply: 2 opacities are +-inf")
    report.note("note: b.ply: said with its prefix already")
    report.status("triangulating through 24 views")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["note: a.ply: 2 opacities are +-inf", "note: b.ply: said with its prefix already",
                                "triangulating through 24 views"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_are_drawn_on_a_terminal_and_logged_as_lines_elsewhere(capsys):
    # In a log (here a StringIO, no terminal) a bar is plain lines, no carriage returns: the
    # first and the last at least, one every LOG_INTERVAL seconds between.
    log = io.StringIO()
    assert list(report.progress_bar(range(3), desc="fit", unit="step", stream=log)) == [0, 1, 2]
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) >= 2 and lines[0].startswith("fit:"), lines
    assert "3/3" in lines[-1] and lines[-1].startswith("fit: 100%"), lines
    assert capsys.readouterr() == ("", "")
    terminal = _Terminal()
    bar = report.progress_bar(total=4, desc="views", unit="view", stream=terminal)
    bar.update(4)
    bar.close()
    assert "views" in terminal.getvalue() and "4/4" in terminal.getvalue() and "view/s" in terminal.getvalue()
    assert "\r" in terminal.getvalue()  # a bar redrawn in place
    for stream in (_Terminal(), io.StringIO()):
        report.progress_bar(range(2), desc="x", unit="it", show=False, stream=stream).close()
        assert stream.getvalue() == ""
    assert report.bars_shown(True, _Terminal()) and not report.bars_shown(False, _Terminal())
    assert not report.bars_shown(True, io.StringIO())


def test_a_logged_bar_says_its_postfix_only_on_its_interval_lines():
    # fit sets loss and PSNR on its bar every 10 steps; tqdm redraws on each set_postfix, so a
    # log got a line every 10 steps (a 30,000-step fit: 3,000), each with the count of the last
    # interval's line (38/400 for 30 s while the fit went on), not one every LOG_INTERVAL.
    log = io.StringIO()
    bar = report.progress_bar(range(100), desc="fit", unit="step", stream=log)
    for step in bar:
        bar.set_postfix(loss=f"{1 / (step + 1):.4f}")
        bar.set_postfix_str(f"step {step}")
    lines = log.getvalue().splitlines()
    assert len(lines) == 2, lines  # the first and the last: no 30 s went by
    assert lines[-1].startswith("fit: 100%") and "100/100" in lines[-1] and "step 99" in lines[-1], lines
    terminal = _Terminal()
    bar = report.progress_bar(total=2, desc="fit", unit="step", stream=terminal)
    bar.set_postfix(loss="0.5")
    assert "loss=0.5" in terminal.getvalue()  # a terminal's bar still shows it at once
    bar.close()


def _leading_text(node: ast.expr) -> str | None:
    """The literal text a printed string starts with (a plain string or an f-string's first part)."""
    if isinstance(node, ast.JoinedStr) and node.values:
        node = node.values[0]
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def test_the_cli_says_notes_and_status_through_report_and_prints_only_results_and_errors():
    """The CLI printed its notes itself, some on stdout, some as "warning: " (import-mesh's
    "the mesh is 80 m tall"): every note goes through report.note, and the CLI's print is for
    results on stdout and its one `error:` line on stderr."""
    said = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"):
                continue
            where = f"cli/{path.name}:{node.lineno}"
            text = _leading_text(node.args[0]) if node.args else None
            to_stderr = any(k.arg == "file" and "stderr" in ast.unparse(k.value) for k in node.keywords)
            if text is not None and text.lstrip().startswith(("note:", "warning:")):
                said.append(f"{where}: prints {text.split(':')[0]}:")
            elif to_stderr and not (text or "").startswith("error: "):
                said.append(f"{where}: prints {ast.unparse(node.args[0]) if node.args else ''} on stderr")
    assert not said, "say notes with report.note, status with report.status: " + ", ".join(said)
