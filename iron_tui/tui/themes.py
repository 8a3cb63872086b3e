"""Dashboard themes: TOML files validated with pydantic and turned into Textual `Theme`s.

Shipped themes live in the repository's `themes/` folder; the wheel carries them as
`iron_tui/_themes` (pyproject force-include). An editable install (`pip install -e .`) exposes the
source tree instead, so both places are looked at. User themes come from
`<config dir>/themes/*.toml`. A bad file is reported (once, by the app) and skipped, never fatal.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "iron"
_COLOR_FIELDS = ("primary", "secondary", "accent", "warning", "error", "success", "background", "surface",
                 "panel", "foreground", "boost")


class ThemeFile(BaseModel):
    """The schema of one `themes/*.toml` file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)
    dark: bool = True
    primary: str
    secondary: str | None = None
    accent: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    foreground: str | None = None
    boost: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator(*_COLOR_FIELDS)
    @classmethod
    def _colour(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                Color.parse(v)
            except ColorParseError:
                raise ValueError(f"not a colour: {v!r}") from None
        return v

    def to_theme(self) -> Theme:
        values = self.model_dump(exclude={"name", "dark", "variables"})
        return Theme(name=self.name, dark=self.dark, variables=dict(self.variables), **values)


@dataclass(frozen=True)
class ThemeProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"theme file {self.path.name} skipped: {self.message}"


def load_theme_file(path: Path) -> Theme:
    """Parse and validate one theme file; raises ValueError with a one-line reason."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not valid TOML ({exc})") from None
    try:
        return ThemeFile.model_validate(raw).to_theme()
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "file"
            parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        raise ValueError("; ".join(parts)) from None


def load_theme_dir(folder: Path) -> tuple[list[Theme], list[ThemeProblem]]:
    themes: list[Theme] = []
    problems: list[ThemeProblem] = []
    if not folder.is_dir():
        return themes, problems
    for path in sorted(folder.glob("*.toml")):
        try:
            themes.append(load_theme_file(path))
        except ValueError as exc:
            problems.append(ThemeProblem(path, str(exc)))
    return themes, problems


def shipped_theme_dirs() -> list[Path]:
    """Where the shipped themes are: inside the installed package, else the source checkout."""
    out: list[Path] = []
    packaged = resources.files("iron_tui") / "_themes"
    if packaged.is_dir():
        out.append(Path(str(packaged)))
    source = Path(__file__).resolve().parents[2] / "themes"
    if source.is_dir() and source not in out:
        out.append(source)
    return out


def user_theme_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("iron-tui", appauthor=False)) / "themes"


def shipped_themes() -> list[Theme]:
    """The themes that come with iron-tui (first location wins per name)."""
    found: dict[str, Theme] = {}
    for folder in shipped_theme_dirs():
        themes, _ = load_theme_dir(folder)  # shipped files are tested; a problem here is a packaging bug
        for theme in themes:
            found.setdefault(theme.name, theme)
    return list(found.values())


def all_themes(user_dir: Path | None) -> tuple[list[Theme], list[ThemeProblem]]:
    """Shipped themes plus the user's (a user theme may replace a shipped one of the same name)."""
    by_name = {t.name: t for t in shipped_themes()}
    problems: list[ThemeProblem] = []
    if user_dir is not None:
        user, problems = load_theme_dir(user_dir)
        by_name.update((t.name, t) for t in user)
    return list(by_name.values()), problems


def theme_names(themes: Iterable[Theme]) -> list[str]:
    return sorted(t.name for t in themes)
