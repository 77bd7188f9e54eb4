"""Message templates: one TOML file per channel, editable without touching code.

`templates/<channel>.toml` ships with the package; a file of the same name in
BROADCAST_TEMPLATES_DIR replaces it. Each file has `format` ("html" for Telegram's HTML parse
mode, else "plain"), a section per kind of message with `text` (the message alone) and `line`
(its line in a digest), `[digest]` and `[affiliate]`; email sections also have `subject`.
Placeholders are `$name` / `${name}` (string.Template); values are escaped for the format, so
a scanner called `a<b>&c` cannot break Telegram's HTML. A file that does not parse or uses an
unknown placeholder is refused with one log line and the shipped file is used instead.
"""

from __future__ import annotations

import html
import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal

from quantcore.logging import get_logger
from svc_broadcaster.messages import COMMON_FIELDS, KIND_FIELDS, KINDS, Channel

log = get_logger(component="templates")

SHIPPED = Path(__file__).with_name("templates")
MAX_LENGTH: dict[str, int] = {"telegram": 4096, "x": 280, "sms": 1600, "email": 100_000}
AFFILIATE_PROGRAMS = ("bybit", "coinglass")
Format = Literal["html", "plain"]


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Section:
    text: Template
    line: Template | None
    subject: Template | None


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None


def _template(raw: Any, where: str, allowed: frozenset[str]) -> Template:
    if not isinstance(raw, str):
        raise TemplateError(f"{where}: expected a string")
    tpl = Template(raw)
    if not tpl.is_valid():
        raise TemplateError(f"{where}: a '$' that is not a placeholder (write $$ for a dollar)")
    unknown = set(tpl.get_identifiers()) - allowed
    if unknown:
        raise TemplateError(
            f"{where}: unknown placeholder(s) {sorted(unknown)}; known: {sorted(allowed)}"
        )
    return tpl


class ChannelTemplates:
    def __init__(self, channel: Channel, data: dict[str, Any], source: Path) -> None:
        self.channel = channel
        self.source = source
        fmt = data.get("format", "plain")
        if fmt not in ("html", "plain"):
            raise TemplateError(f"{source}: format must be 'html' or 'plain', got {fmt!r}")
        self.format: Format = fmt
        self.max_length = MAX_LENGTH[channel]
        self.sections: dict[str, Section] = {}
        needs_subject = channel == "email"
        for kind in (*KINDS, "digest"):
            sec = data.get(kind)
            if not isinstance(sec, dict):
                raise TemplateError(f"{source}: section [{kind}] is missing")
            allowed = KIND_FIELDS[kind] | COMMON_FIELDS
            where = f"{source} [{kind}]"
            line = None
            if kind != "digest":
                line = _template(sec.get("line"), f"{where} line", allowed)
            subject = None
            if needs_subject:
                subject = _template(sec.get("subject"), f"{where} subject", allowed)
            self.sections[kind] = Section(_template(sec.get("text"), f"{where} text", allowed),
                                          line, subject)  # fmt: skip
        aff = data.get("affiliate", {})
        if not isinstance(aff, dict):
            raise TemplateError(f"{source}: [affiliate] must be a table")
        self.affiliate = {
            name: _template(aff[name], f"{source} [affiliate] {name}", frozenset({"code"}))
            for name in AFFILIATE_PROGRAMS
            if name in aff
        }

    # --- rendering -----------------------------------------------------------------------------

    def escape(self, value: str) -> str:
        return html.escape(value, quote=False) if self.format == "html" else value

    def _values(self, fields: dict[str, str], affiliate: str) -> dict[str, str]:
        values = {k: self.escape(v) for k, v in fields.items()}
        values["affiliate"] = affiliate
        values.setdefault("mode", "")
        return values

    def affiliate_text(self, codes: dict[str, str]) -> str:
        """The affiliate lines for the configured referral codes (already escaped)."""
        return "".join(
            tpl.substitute(code=self.escape(codes[name]))
            for name, tpl in self.affiliate.items()
            if codes.get(name)
        )

    def _finish(self, text: str, mode: str) -> str:
        text = text.strip("\n")
        banner = self.escape(mode)
        if banner and banner not in text:  # an edited template must not hide PAPER / SIMULATED
            text = f"{banner}\n{text}"
        if len(text) > self.max_length:
            text = text[: self.max_length - 1] + "…"
        return text

    def render(self, kind: str, fields: dict[str, str], affiliate: str) -> Rendered:
        sec = self.sections[kind]
        values = self._values(fields, affiliate)
        text = self._finish(sec.text.safe_substitute(values), fields.get("mode", ""))
        subject = None
        if sec.subject is not None:
            subject = " ".join(sec.subject.safe_substitute(values).split())
        return Rendered(text, subject)

    def line(self, kind: str, fields: dict[str, str]) -> str:
        tpl = self.sections[kind].line
        assert tpl is not None
        return " ".join(tpl.safe_substitute(self._values(fields, "")).split())

    def digest(self, lines: list[str], kinds: str, mode: str, affiliate: str) -> Rendered:
        """A digest carrying `lines` (rendered by `line`, i.e. already escaped)."""
        sec = self.sections["digest"]
        values = {"count": str(len(lines)), "lines": "\n".join(lines), "kinds": self.escape(kinds),
                  "mode": self.escape(mode), "affiliate": affiliate, "time": ""}  # fmt: skip
        text = self._finish(sec.text.safe_substitute(values), mode)
        subject = None
        if sec.subject is not None:
            subject = " ".join(sec.subject.safe_substitute(values).split())
        return Rendered(text, subject)

    def digest_fits(self, lines: list[str], kinds: str, mode: str, affiliate: str) -> bool:
        sec = self.sections["digest"]
        values = {"count": str(len(lines)), "lines": "\n".join(lines), "kinds": self.escape(kinds),
                  "mode": self.escape(mode), "affiliate": affiliate, "time": ""}  # fmt: skip
        text = sec.text.safe_substitute(values).strip("\n")
        banner = self.escape(mode)
        extra = len(banner) + 1 if banner and banner not in text else 0
        return len(text) + extra <= self.max_length


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def load(channel: Channel, override_dir: Path | None) -> ChannelTemplates:
    """The channel's templates: the owner's file when present and valid, else the shipped one."""
    shipped = SHIPPED / f"{channel}.toml"
    if override_dir is not None:
        own = override_dir / f"{channel}.toml"
        if own.is_file():
            try:
                tpl = ChannelTemplates(channel, _read(own), own)
                log.info("templates loaded", channel=channel, path=str(own))
                return tpl
            except (TemplateError, tomllib.TOMLDecodeError, OSError) as exc:
                log.error("own templates refused, using the shipped ones", channel=channel,
                          path=str(own), error=str(exc)[:500])  # fmt: skip
    return ChannelTemplates(channel, _read(shipped), shipped)
