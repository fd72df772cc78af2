"""First-run overlay over the image: what to try, and what this installation is missing (with fixes).

Plain data in: the model info dict (or None) and the system check rows (name, ok, summary, fix).
"""

from __future__ import annotations

import html
import os
import re

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from explorer.widgets.direction_panel import display_name


def anime_direction_name(directions: list[dict]) -> str | None:
    """The slider label of the model's anime-ify direction, if it ships one."""
    for d in directions:
        if "anime" in str(d.get("name", "")).lower():
            return display_name(d)
    return None


def tips_html(model_info: dict | None) -> str:
    """What to try first, tailored to the open model."""
    tips = []
    if model_info is None:
        tips.append(
            "Open a model with <b>File ▸ Open…</b> or drop a <code>.safetensors</code> or NVIDIA "
            "<code>.pkl</code> file here."
        )
    else:
        anime = anime_direction_name(model_info.get("directions", []))
        if anime:
            tips.append(
                f"Drag the <b>{html.escape(anime)}</b> slider in <i>Directions</i> "
                "to push the face towards anime style."
            )
        else:
            tips.append("Drag a slider in <i>Directions</i> (PCA directions are computed for every model).")
        partners = model_info.get("blend_partners", [])
        if partners:
            tips.append(
                f"<b>Blend with {html.escape(partners[0]['name'])}</b> (in <i>Model blend</i>, under the "
                "directions) mixes in the layers of the model fine-tuned from this one."
            )
        tips.append(
            "Browse faces with <b>←</b> / <b>→</b>, the <i>Seeds</i> strip, or <b>R</b> for a random one."
        )
        tips.append(
            "<b>Shift-drag</b> the image to move the generator's input, <b>Ctrl-drag</b> to rotate it; "
            "the <i>Transform inspector</i> measures how well the picture follows (EQ-T, EQ-R)."
        )
    tips.append("<b>File ▸ Export video…</b> writes MP4 interpolations and rotations.")
    tips.append("<b>Train ▸ Train / fine-tune…</b> trains on your own folder of images, with live plots.")
    return (
        "<ol style='margin-left:-20px'>"
        + "".join(f"<li style='margin-bottom:5px'>{t}</li>" for t in tips)
        + "</ol>"
    )


_URL = re.compile(r"https?://\S+?(?=[.,;)]?(?:\s|$))")
_PATH = re.compile(r"(?<![\w.])(?:~|/)[\w.~+-]*(?:/[\w.~+-]+)+/?")
ZWSP = "\u200b"  # a break opportunity that shows nothing


def readable(text: str) -> str:
    """Escaped text for a narrow label: a URL becomes a link named by its file, a path may break
    after its slashes (and shows the home folder as ~); without this Qt breaks long paths
    anywhere, in the middle of a word."""
    home = os.path.expanduser("~")
    out, pos = [], 0
    for m in re.finditer(f"{_URL.pattern}|{_PATH.pattern}", text):
        out.append(html.escape(text[pos : m.start()]))
        token = m.group(0)
        if token.startswith(("http://", "https://")):
            name = token.rstrip("/").rsplit("/", 1)[-1]
            out.append(f"<a href='{html.escape(token)}' style='color:#8cb8ff'>{html.escape(name)}</a>")
        else:
            if home != "/" and (token == home or token.startswith(home + "/")):
                token = "~" + token[len(home) :]
            out.append(html.escape(token).replace("/", "/" + ZWSP))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def checks_html(checks: list[dict]) -> str:
    """The failed checks with their fixes; empty when all is well."""
    bad = [c for c in checks if not c.get("ok", True)]
    if not bad:
        return ""
    rows = "".join(
        f"<li style='margin-bottom:5px'><b>{html.escape(c['name'])}:</b> {readable(c['summary'])}"
        + (f"<br><span style='color:#f0c27b'>Fix: {readable(c['fix'])}</span>" if c.get("fix") else "")
        + "</li>"
        for c in bad
    )
    return f"<p><b>Worth knowing about this computer</b></p><ul style='margin-left:-20px'>{rows}</ul>"


class WelcomeOverlay(QFrame):
    """A card centred over its parent; emits dismissed(show_at_start) when closed."""

    dismissed = Signal(bool)

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("welcomeOverlay")
        self.setStyleSheet(
            "#welcomeOverlay { background: rgba(23, 26, 31, 235); border: 1px solid #d98a2b;"
            " border-radius: 10px; } QLabel { background: transparent; }"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 18, 22, 16)
        title = QLabel("<h2 style='margin:0'>Welcome to StyleGAN Explorer</h2>")
        self.tips = QLabel()
        self.tips.setWordWrap(True)
        self.tips.setTextFormat(Qt.TextFormat.RichText)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setTextFormat(Qt.TextFormat.RichText)
        self.problems.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.problems.setOpenExternalLinks(True)
        self.show_at_start = QCheckBox("Show this at start")
        self.show_at_start.setChecked(True)
        close = QPushButton("Start exploring")
        close.setDefault(True)
        close.clicked.connect(self.dismiss)
        bottom = QHBoxLayout()
        bottom.addWidget(self.show_at_start)
        bottom.addStretch(1)
        bottom.addWidget(close)
        layout.addWidget(title)
        layout.addWidget(QLabel("Things to try:"))
        layout.addWidget(self.tips)
        layout.addWidget(self.problems)
        layout.addLayout(bottom)
        parent.installEventFilter(self)  # follow the parent's size
        self.hide()

    def set_content(self, model_info: dict | None, checks: list[dict]) -> None:
        self.tips.setText(tips_html(model_info))
        problems = checks_html(checks)
        self.problems.setText(problems)
        self.problems.setVisible(bool(problems))
        self._place()

    def popup(self) -> None:
        self.show()
        self.raise_()
        self._place()

    def dismiss(self) -> None:
        self.hide()
        self.dismissed.emit(self.show_at_start.isChecked())

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.dismiss()
            return
        super().keyPressEvent(event)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.parent() and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        parent = self.parentWidget()
        width = min(560, max(320, parent.width() - 40))
        self.setFixedWidth(width)
        self.adjustSize()
        self.move((parent.width() - width) // 2, max(10, (parent.height() - self.height()) // 2))
