"""No tracked file sends its reader to what is not in the tree.

Six files once cited a git-ignored notes file under a scratch directory as "the contract": a
fresh clone has no such file. A tracked file may name a git-ignored path only where the tree
itself makes that path when it runs (GENERATED: the lab's state, the virtualenvs, build and
run output, each with what makes it), or in a file whose job is to list ignored paths. A cited
document (.md, .rst, .txt) under an ignored directory never counts as generated.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Ignored paths that the tree creates, each with what creates it: files may cite these.
GENERATED = {
    ".lab/": "the lab (mk/lab.mk, molecule/shared/create.yml): hosts' state and generated secrets",
    ".venv": "make venv, keystone-venv (.venv-keystone), bench-venvs (.venv-glance-upstream)",
    ".tempest/": "make test-tempest / verify (mk/tempest.mk): tempest's workspace and results",
    "backups/": "playbooks/backup.yml's default backup_dir (roles/glance_day2/defaults/main.yml)",
    "bench/out/": "the benchmark's output (bench/run.py, bench/servers.py)",
    "wheelhouse/": "make wheelhouse (mk/toolkit.mk)",
    "wheelhouse-upstream/": "make wheelhouse-upstream (mk/adopt.mk): upstream Glance 33 for molecule/adopt",
    "service/build/": "setuptools' build directory (mk/toolkit.mk builds from a clean copy instead)",
}
# Files whose job is to name ignored paths (to ignore or skip them).
IGNORE_LISTS = {".gitignore", ".yamllint", ".ansible-lint"}
DOCUMENT = re.compile(r"\.(md|rst|txt)$")
# A relative path with at least one slash, not part of a longer path, URL or variable.
PATH = re.compile(r"(?<![\w./$~:-])(\.?[A-Za-z0-9_][\w.-]*/[\w./-]*)")


def git(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True)


def cited_paths(repo: Path) -> dict[str, set[str]]:
    """Each path-like string in a tracked text file -> the files citing it."""
    cited: dict[str, set[str]] = {}
    listed = git(repo, "ls-files", "-z")
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        path = repo / name
        if name in IGNORE_LISTS or path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for match in PATH.finditer(text):
            cited.setdefault(match.group(1).rstrip("."), set()).add(name)
    return cited


def ignored(repo: Path, paths: list[str]) -> list[str]:
    """The paths the repository's .gitignore files ignore, tracked paths excepted.

    Asked of an empty repository holding only those .gitignore files: in the checkout itself
    git refuses a path through a symlink (`.lab` is often one), and the answer must not depend
    on what the working tree happens to hold."""
    listed = git(repo, "ls-files", "-z")
    assert listed.returncode == 0, listed.stderr
    tracked = set(filter(None, listed.stdout.split("\0")))
    tracked |= {str(parent) for name in tracked for parent in Path(name).parents if str(parent) != "."}
    with tempfile.TemporaryDirectory() as scratch:
        assert git(Path(scratch), "init", "-q").returncode == 0
        for name in tracked:
            if Path(name).name == ".gitignore":
                (Path(scratch) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(repo / name, Path(scratch) / name)
        checked = git(Path(scratch), "check-ignore", "--no-index", "--stdin", stdin="\n".join(paths))
    assert checked.returncode in (0, 1), checked.stderr
    return [path for path in checked.stdout.split() if path.rstrip("/") not in tracked]


def missing_citations(repo: Path, generated: dict[str, str]) -> list[str]:
    """`file: path` for each cited path git ignores that the tree does not create."""
    cited = cited_paths(repo)
    found = []
    for path in ignored(repo, sorted(cited)):
        made = any(path.startswith(prefix) for prefix in generated)
        if made and not DOCUMENT.search(path):
            continue
        found += [f"{name}: {path}" for name in sorted(cited[path])]
    return found


def test_no_tracked_file_cites_an_ignored_path() -> None:
    found = missing_citations(ROOT, GENERATED)
    assert not found, (
        "these files cite git-ignored paths the tree does not create (a fresh clone lacks them): "
        f"{found}; cite a tracked file (docs/...) instead"
    )


def test_generated_prefixes_are_ignored() -> None:
    """Each GENERATED entry is really git-ignored (else it does not belong in the list)."""
    probes = [prefix.rstrip("/") + ("/x" if prefix.endswith("/") else "/bin/python") for prefix in GENERATED]
    assert sorted(ignored(ROOT, probes)) == sorted(probes)


def make_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert git(repo, "init", "-q").returncode == 0
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    assert git(repo, "add", ".").returncode == 0
    return repo


def test_a_citation_of_an_ignored_notes_file_is_found(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            ".gitignore": "/scratch/\n/out/\n",
            "roles/x/defaults/main.yml": "# The contract is scratch/CONTRACT.md; see docs/X.md.\n",
            "docs/X.md": "Output goes to out/run-1/ (made by run.py); notes in out/NOTES.md.\n",
            "run.py": "OUT = 'out/run-1/'  # https://example.org/scratch/y\n",
        },
    )
    found = missing_citations(repo, {"out/": "run.py"})
    assert sorted(found) == ["docs/X.md: out/NOTES.md", "roles/x/defaults/main.yml: scratch/CONTRACT.md"]
    # A document is never output: cited under a generated directory, it is still missing.
    assert sorted(missing_citations(repo, {"out/": "run.py", "scratch/": "?"})) == sorted(found)
