"""Train or fine-tune a model with live plots.

Choose a data set (a folder or zip; a folder of arbitrary images can be turned into a data set in
the background), the config (StyleGAN2 / StyleGAN3-T / StyleGAN3-R), batch, gamma, length and
metrics, and whether to start from scratch, fine-tune the open model or continue its training.
Training runs in a child process (`explorer.training_bridge`); every tick feeds the plots
(losses, FID, EQ-T, EQ-R, augment p, sec/kimg) and the newest sample grid is shown. Stop writes a
snapshot; Resume continues the stopped run; "Open latest snapshot in explorer" emits
`open_snapshot_requested(path)`.

Plain data only: no torch or gan imports here.
"""

from __future__ import annotations

import html
import math
import os

from PySide6.QtCore import QElapsedTimer, QSettings, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from explorer.dialogs.saved_choices import load_choices, save_choices
from explorer.dialogs.spin_boxes import float_spin, int_spin
from explorer.widgets.plots import TrainingPlots

CONFIGS = (
    ("stylegan3-t", "StyleGAN3-T (translation equivariant)"),
    ("stylegan3-r", "StyleGAN3-R (rotation equivariant)"),
    ("stylegan2", "StyleGAN2"),
)
START_FROM = (
    ("scratch", "A new model (from scratch)"),
    ("finetune", "Fine-tune the open model"),
    ("continue", "Continue the open model's training"),
)
METRICS = ("fid50k_full", "kid50k_full", "eqt50k_int", "eqt50k_frac", "eqr50k", "swd")
RESOLUTIONS = (16, 32, 64, 128, 256, 512, 1024)
SETTINGS_KEY = "training/options"  # JSON of the last started options


class TrainingDialog(QDialog):
    open_snapshot_requested = Signal(str)
    # How long closing waits for a stopping run before handing it to the application (see
    # TrainingBridge.shutdown); the window stays unresponsive meanwhile.
    shutdown_timeout_ms = 60_000

    def __init__(
        self,
        current_model_path: str | None,
        parent: QWidget | None = None,
        bridge=None,
        outdir: str | None = None,
        settings: QSettings | None = None,
    ):
        """settings: where the last options are kept (default: the parent window's `settings`,
        if it has a QSettings; none otherwise, e.g. in tests)."""
        super().__init__(parent)
        if settings is None and isinstance(getattr(parent, "settings", None), QSettings):
            settings = parent.settings
        self.settings = settings
        self.setWindowTitle("Train / fine-tune")
        self.current_model_path = current_model_path
        if bridge is None:
            from explorer.training_bridge import TrainingBridge

            bridge = TrainingBridge(parent=self)
        self.bridge = bridge
        self.dataset_info: dict | None = None
        self.last_error: str | None = None
        self.latest_snapshot: str | None = None
        self.latest_grid: str | None = None
        self.ticks = 0
        self._data_checked: dict | None = None  # the last inspection of the current data path
        self._checking = ""  # the path being inspected (or last inspected)
        self.last_estimate: dict | None = None
        self._grid_pixmap: QPixmap | None = None
        self._tick_clock = QElapsedTimer()
        self._build(outdir or os.path.join(os.path.expanduser("~"), "stylegan-runs"))
        bridge.tick.connect(self._on_tick)
        bridge.run_finished.connect(self._on_run_finished)
        bridge.run_failed.connect(self._on_run_failed)
        bridge.inspected.connect(self._on_inspected)
        bridge.dataset_progress.connect(self._on_convert_progress)
        bridge.dataset_finished.connect(self._on_converted)
        bridge.dataset_failed.connect(self._on_convert_failed)
        bridge.estimated.connect(self._on_estimated)
        self._set_state("idle")
        self._restore_options()
        for spin in (self.cbase, self.cmax, self.zw_dim, self.map_depth, self.batch, self.gamma, self.kimg):
            spin.valueChanged.connect(self._estimate_stale)
        for combo in (self.cfg, self.start_from, self.aug, self.device):
            combo.currentIndexChanged.connect(self._estimate_stale)

    # --- layout --------------------------------------------------------------------------

    def _build(self, outdir: str) -> None:
        left = QVBoxLayout()
        left.addWidget(self._data_group())
        left.addWidget(self._network_group())
        left.addWidget(self._training_group(outdir))
        left.addStretch(1)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start_training)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; a snapshot is written first.")
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its newest snapshot.")
        self.resume_button.clicked.connect(self.resume_training)
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        self.start_reason = QLabel()  # why Start is disabled (no data set yet, not a data set)
        self.start_reason.setWordWrap(True)
        self.start_reason.setObjectName("hint")
        left.addWidget(self.start_reason)
        left.addLayout(buttons)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setFixedWidth(400)

        right = QVBoxLayout()
        self.headline = QLabel("Not running")
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.headline.setFont(font)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.details = QLabel("Choose a data set and press Start.")
        self.details.setWordWrap(True)
        self.plots = TrainingPlots()
        self.plots.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        right.addWidget(self.headline)
        right.addWidget(self.progress)
        right.addWidget(self.details)
        right.addWidget(self.plots, 3)
        right.addWidget(self._snapshot_box(), 2)

        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.VLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        layout.addLayout(right, 1)
        self.resize(1280, 860)

    def _data_group(self) -> QGroupBox:
        box = QGroupBox("Data set")
        grid = QVBoxLayout(box)
        row = QHBoxLayout()
        self.data_path = QLineEdit()
        self.data_path.setPlaceholderText("folder or zip of images")
        self.data_path.editingFinished.connect(lambda: self.set_data_path(self.data_path.text()))
        folder = QPushButton("Folder…")
        folder.clicked.connect(self._choose_folder)
        archive = QPushButton("Zip…")
        archive.clicked.connect(self._choose_zip)
        row.addWidget(self.data_path, 1)
        row.addWidget(folder)
        row.addWidget(archive)
        grid.addLayout(row)
        self.data_info = QLabel("No data set chosen.")
        self.data_info.setWordWrap(True)
        grid.addWidget(self.data_info)

        self.make_box = QWidget()
        make = QHBoxLayout(self.make_box)
        make.setContentsMargins(0, 0, 0, 0)
        self.make_resolution = QComboBox()
        for r in RESOLUTIONS:
            self.make_resolution.addItem(f"{r} × {r}", r)
        self.make_resolution.setCurrentIndex(RESOLUTIONS.index(256))
        self.make_resolution.setToolTip("Images are centre-cropped to a square and scaled to this size.")
        self.make_button = QPushButton("Make data set")
        self.make_button.clicked.connect(self.make_dataset)
        self.make_cancel = QPushButton("Cancel")
        self.make_cancel.clicked.connect(self.bridge.cancel_conversion)
        make.addWidget(QLabel("Size"))
        make.addWidget(self.make_resolution)
        make.addWidget(self.make_button, 1)
        make.addWidget(self.make_cancel)
        self.make_progress = QProgressBar()
        grid.addWidget(self.make_box)
        grid.addWidget(self.make_progress)
        self.make_box.hide()
        self.make_progress.hide()
        return box

    def _network_group(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.cfg = QComboBox()
        for key, label in CONFIGS:
            self.cfg.addItem(label, key)
        self.cfg.setToolTip(self._help("cfg"))
        self.start_from = QComboBox()
        for key, label in START_FROM:
            self.start_from.addItem(label, key)
        if not self.current_model_path:
            for i in (1, 2):
                self.start_from.model().item(i).setEnabled(False)
        name = os.path.basename(self.current_model_path) if self.current_model_path else "no model is open"
        self.start_from.setToolTip(f"The open model: {name}. " + self._help("resume"))
        self.resolution = QLabel("from the data set")
        self.cbase = int_spin(256, 131072, 32768, self._help("cbase"), step=256)
        self.cmax = int_spin(8, 2048, 512, self._help("cmax"), step=8)
        self.zw_dim = int_spin(8, 1024, 512, "Size of the latents z and w.", step=8)
        self.map_depth = int_spin(0, 8, 0, self._help("map_depth"))
        self.map_depth.setSpecialValueText("default")
        capacity = QHBoxLayout()
        capacity.addWidget(self.cbase, 1)
        capacity.addWidget(QLabel("max"))
        capacity.addWidget(self.cmax, 1)
        latent = QHBoxLayout()
        latent.addWidget(self.zw_dim, 1)
        latent.addWidget(QLabel("mapping"))
        latent.addWidget(self.map_depth, 1)
        self.cond = QCheckBox("Class-conditional (labels of the data set)")
        self.cond.setToolTip(self._help("cond"))
        self.cond.setEnabled(False)
        self.cpu_box = QWidget()
        cpu_row = QHBoxLayout(self.cpu_box)
        cpu_row.setContentsMargins(0, 0, 0, 0)
        self.cpu_note = QLabel("No GPU: these networks train very slowly on a CPU.")
        self.cpu_note.setWordWrap(True)
        self.cpu_button = QPushButton("Use CPU-sized settings")
        self.cpu_button.setToolTip(
            "Narrow networks, batch 8, short ticks: the settings the shipped toon model was trained "
            "with (about 4 min per kimg at 64 px on 2 cores)."
        )
        self.cpu_button.clicked.connect(self.use_cpu_sized)
        cpu_row.addWidget(self.cpu_note, 1)
        cpu_row.addWidget(self.cpu_button)
        self.cpu_box.setVisible(not self._has_gpu())
        form.addRow(self.cpu_box)
        form.addRow("Config", self.cfg)
        form.addRow("Start from", self.start_from)
        form.addRow("Resolution", self.resolution)
        form.addRow("Channels", capacity)
        form.addRow("Latent size", latent)
        form.addRow("", self.cond)
        return box

    def _training_group(self, outdir: str) -> QGroupBox:
        box = QGroupBox("Training")
        form = QFormLayout(box)
        self.batch = int_spin(0, 4096, 0, self._help("batch"))
        self.batch.setSpecialValueText("auto")
        gamma_tip = self._help("gamma") + " (auto = 0.0002·res²/batch)"
        self.gamma = float_spin(0.0, 1000.0, 0.0, gamma_tip, step=0.1)
        self.gamma.setDecimals(4)
        self.gamma.setSpecialValueText("auto")
        self.kimg = float_spin(0.001, 100000.0, 1000.0, self._help("kimg"), step=100.0)
        self.kimg.setDecimals(3)
        self.tick_kimg = float_spin(0.001, 1000.0, 4.0, self._help("tick_kimg"), step=1.0)
        self.tick_kimg.setDecimals(3)
        self.snap = int_spin(1, 10000, 10, self._help("snap"))
        length = QHBoxLayout()
        length.addWidget(self.kimg, 1)
        length.addWidget(QLabel("tick"))
        length.addWidget(self.tick_kimg, 1)
        self.aug = QComboBox()
        for key, label in (("ada", "ADA (adaptive)"), ("noaug", "none"), ("fixed", "fixed p")):
            self.aug.addItem(label, key)
        self.aug.setToolTip(self._help("aug"))
        self.mirror = QCheckBox("x-flips")
        self.mirror.setToolTip(self._help("mirror"))
        aug_row = QHBoxLayout()
        aug_row.addWidget(self.aug, 1)
        aug_row.addWidget(self.mirror)
        self.metric_boxes: dict[str, QCheckBox] = {}
        metrics = QGridLayout()
        metrics.setContentsMargins(0, 0, 0, 0)
        for i, name in enumerate(METRICS):
            check = QCheckBox(_METRIC_LABELS[name])
            check.setToolTip(f"{name}: {_METRIC_TIPS[name]}")
            self.metric_boxes[name] = check
            metrics.addWidget(check, i // 3, i % 3)
        self.metrics_num = int_spin(0, 200000, 0, self._help("metrics_num"), step=1000)
        self.metrics_num.setSpecialValueText("default (50k)")
        self.device = QComboBox()
        for d in ("auto", "cpu", "cuda"):
            self.device.addItem(d, d)
        self.device.setToolTip(self._help("device"))
        self.outdir = QLineEdit(outdir)
        self.outdir.setToolTip(self._help("outdir"))
        browse = QPushButton("…")
        browse.setFixedWidth(32)
        browse.clicked.connect(self._choose_outdir)
        out_row = QHBoxLayout()
        out_row.addWidget(self.outdir, 1)
        out_row.addWidget(browse)
        form.addRow("Batch", self.batch)
        form.addRow("R1 gamma", self.gamma)
        form.addRow("Length (kimg)", length)
        form.addRow("Snapshot every", self.snap)
        self.snap.setSuffix(" ticks")
        form.addRow("Augment", aug_row)
        form.addRow("Metrics", metrics)
        form.addRow("Metric samples", self.metrics_num)
        form.addRow("Device", self.device)
        form.addRow("Runs folder", out_row)
        self.estimate_button = QPushButton("Estimate time")
        self.estimate_button.setToolTip(
            "Run a few training passes of these networks and tell how long the run takes here "
            "(s/kimg, time to the chosen length, size of each snapshot)."
        )
        self.estimate_button.clicked.connect(self.estimate_time)
        self.estimate_label = QLabel("How long will it take? Press “Estimate time”.")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setObjectName("hint")
        form.addRow(self.estimate_button, self.estimate_label)
        return box

    def _snapshot_box(self) -> QGroupBox:
        box = QGroupBox("Latest snapshot")
        layout = QHBoxLayout(box)
        self.preview = QLabel("The sample grid appears here at the first snapshot.")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(320, 160)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview.setStyleSheet(
            "QLabel { background: #303030; color: #d0d0d0; border: 1px solid palette(mid); }"
        )
        side = QVBoxLayout()
        self.snapshot_label = QLabel("No snapshot yet.")
        self.snapshot_label.setWordWrap(True)
        self.snapshot_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open latest snapshot in explorer")
        self.open_button.clicked.connect(self.open_latest_snapshot)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setPlaceholderText("Messages of the run")
        side.addWidget(self.snapshot_label)
        side.addWidget(self.open_button)
        side.addWidget(self.log, 1)
        layout.addWidget(self.preview, 3)
        layout.addLayout(side, 2)
        return box

    def _has_gpu(self) -> bool:
        try:
            return bool(self.bridge.has_gpu())
        except Exception:  # a fake bridge in tests, or torch missing: say nothing about GPUs
            return True

    def use_cpu_sized(self) -> None:
        """Set the network and training sizes to ones a CPU trains at a useful pace."""
        resolution = (self.dataset_info or {}).get("resolution")
        values = dict(self.bridge.cpu_sized(resolution))
        self.set_options(**values)
        self._log(
            "CPU-sized settings: "
            + ", ".join(f"{k} {v:g}" for k, v in values.items())
            + ". Press “Estimate time” to see how long the run takes."
        )
        self._estimate_stale()

    def _help(self, name: str) -> str:
        try:
            return self.bridge.field_help(name)
        except Exception:  # help text is a nicety; never block the dialog on it
            return ""

    # --- data set ------------------------------------------------------------------------

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data set folder", self.data_path.text())
        if path:
            self.set_data_path(path)

    def _choose_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Data set zip", self.data_path.text(), "Zip archives (*.zip)"
        )
        if path:
            self.set_data_path(path)

    def _choose_outdir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Runs folder", self.outdir.text())
        if path:
            self.outdir.setText(path)

    def set_data_path(self, path: str) -> None:
        path = path.strip()
        if self.data_path.text() != path:
            self.data_path.setText(path)
        self.dataset_info = None
        self._data_checked = None
        self._checking = path
        self.make_box.hide()
        if not path:
            self.data_info.setText("No data set chosen.")
            return
        self.data_info.setText("Checking the data set…")
        self.bridge.inspect_dataset(path)
        self._update_buttons()

    def _on_inspected(self, info: dict) -> None:
        if info.get("path") != self.data_path.text().strip():
            return  # a result for an earlier choice
        self._data_checked = info
        if info.get("ok"):
            self.dataset_info = info
            self.data_info.setText("✔ " + info["message"])
            self.resolution.setText(f"{info['resolution']} × {info['resolution']} (from the data set)")
            self.cond.setEnabled(bool(info.get("labels")))
            self.cond.setChecked(self.cond.isChecked() and bool(info.get("labels")))
            self.make_box.hide()
        else:
            self.dataset_info = None
            found = int(info.get("images_found") or 0)
            text = f"Not a training data set: {info.get('message', '')}"
            if found:
                text += f"\n{found} image(s) found: make a data set from them (square, one size):"
                self.make_box.show()
            self.data_info.setText(text)
        self._update_buttons()

    def make_dataset(self) -> None:
        source = self.data_path.text().strip().rstrip("/\\")
        res = int(self.make_resolution.currentData())
        dest = f"{source}-{res}px.zip"
        n = 2
        while os.path.exists(dest):
            dest, n = f"{source}-{res}px-{n}.zip", n + 1
        self.make_progress.setValue(0)
        self.make_progress.show()
        self.make_button.setEnabled(False)
        self.make_cancel.setEnabled(True)
        self.data_info.setText(f"Making {os.path.basename(dest)}…")
        self.bridge.convert_dataset(source, dest, res)

    def _on_convert_progress(self, done: int, total: int) -> None:
        self.make_progress.setRange(0, max(total, 1))
        self.make_progress.setValue(done)

    def _on_converted(self, result: dict) -> None:
        self.make_progress.hide()
        self.make_button.setEnabled(True)
        self._log(result.get("summary", ""))
        self.set_data_path(result["dest"])

    def _on_convert_failed(self, message: str) -> None:
        self.make_progress.hide()
        self.make_button.setEnabled(True)
        self.data_info.setText(f"The data set was not made: {message}")
        self._log(message)

    # --- options -------------------------------------------------------------------------

    def options(self) -> dict:
        """TrainConfig fields as plain data."""
        start = self.start_from.currentData()
        zw = int(self.zw_dim.value())
        opts = {
            "cfg": self.cfg.currentData(),
            "data": self.data_path.text().strip(),
            "outdir": self.outdir.text().strip(),
            "batch": int(self.batch.value()) or None,
            "gamma": float(self.gamma.value()) or None,
            "kimg": float(self.kimg.value()),
            "tick_kimg": float(self.tick_kimg.value()),
            "snap": int(self.snap.value()),
            "metrics": [name for name, box in self.metric_boxes.items() if box.isChecked()],
            "metrics_num": int(self.metrics_num.value()) or None,
            "aug": self.aug.currentData(),
            "mirror": self.mirror.isChecked(),
            "cond": self.cond.isChecked() and self.cond.isEnabled(),
            "device": self.device.currentData(),
            "cbase": int(self.cbase.value()),
            "cmax": int(self.cmax.value()),
            "z_dim": zw,
            "w_dim": zw,
            "map_depth": int(self.map_depth.value()) or None,
        }
        if start in ("finetune", "continue") and self.current_model_path:
            opts["resume"] = self.current_model_path
            opts["finetune"] = start == "finetune"
        return opts

    def set_options(self, **values) -> None:
        """Set widgets from TrainConfig-like values (used by tests and to restore settings)."""
        for key, value in values.items():
            if key == "cfg":
                self.cfg.setCurrentIndex(self.cfg.findData(value))
            elif key == "aug":
                self.aug.setCurrentIndex(self.aug.findData(value))
            elif key == "device":
                self.device.setCurrentIndex(self.device.findData(value))
            elif key == "metrics":
                for name, box in self.metric_boxes.items():
                    box.setChecked(name in value)
            elif key in ("z_dim", "w_dim"):
                self.zw_dim.setValue(int(value))
            elif key == "outdir":
                self.outdir.setText(value)
            elif key in ("mirror", "cond"):
                getattr(self, key).setChecked(bool(value))
            elif key == "start_from":
                self.start_from.setCurrentIndex(self.start_from.findData(value))
            elif key in (
                "batch",
                "gamma",
                "kimg",
                "tick_kimg",
                "snap",
                "metrics_num",
                "cbase",
                "cmax",
                "map_depth",
            ):
                getattr(self, key).setValue(0 if value is None else value)
            else:
                raise KeyError(f"unknown option {key!r}")

    def _save_options(self, opts: dict) -> None:
        kept = {k: v for k, v in opts.items() if k not in ("resume", "finetune")}
        save_choices(self.settings, SETTINGS_KEY, kept)

    def _restore_options(self) -> None:
        saved = load_choices(self.settings, SETTINGS_KEY)
        data = saved.pop("data", "")
        for key, value in saved.items():
            try:
                self.set_options(**{key: value})
            except (KeyError, TypeError, ValueError):
                pass  # an option of another version: skip it
        if data and os.path.exists(data):
            self.set_data_path(data)

    # --- estimate ------------------------------------------------------------------------

    def estimate_time(self) -> bool:
        """Measure a few training passes of the current settings in the background."""
        opts = self.options()
        problem = self._data_problem(opts["data"]) or self.bridge.validate(opts)
        if problem is not None:
            self._error(problem)
            return False
        if not self.bridge.estimate(opts):
            return False
        self.estimate_label.setText("Measuring a few training passes of these networks… (up to a minute)")
        self._update_buttons()
        return True

    def _on_estimated(self, result: dict) -> None:
        self._update_buttons()
        if not result.get("ok"):
            self.last_estimate = None
            self.estimate_label.setText(f"No estimate: {result.get('message', '')}")
            return
        self.last_estimate = result
        text = (
            f"≈ {result['sec_per_kimg']:,.0f} s/kimg · {_duration(result['seconds_to_end'])} to "
            f"{result['kimg']:g} kimg · {_size(result['snapshot_bytes'])} per snapshot"
        )
        if not self._has_gpu() and result["seconds_to_end"] > 24 * 3600:
            text += " · too slow for a CPU? Try “Use CPU-sized settings”."
        self.estimate_label.setText(text)
        self.estimate_label.setToolTip("\n".join(result.get("lines", [])))
        self._log("\n".join(result.get("lines", [])))

    def _estimate_stale(self, *_) -> None:
        if self.last_estimate is not None:
            self.last_estimate = None
            self.estimate_label.setText("Settings changed: press “Estimate time” again.")

    # --- running -------------------------------------------------------------------------

    def _data_problem(self, path: str) -> str | None:
        """Why training cannot start on this data path yet (None: checked and usable)."""
        if not path:
            return "Choose a data set first."
        checked = self._data_checked
        if checked is None or checked.get("path") != path:
            if self._checking != path:
                self.set_data_path(path)  # typed but not checked yet: check it now
            return "The data set is being checked; press Start again when it is."
        if not checked.get("ok"):
            return f"Not a training data set: {checked.get('message', '')}"
        return None

    def start_training(self, resume_run: str | None = None) -> bool:
        if self.bridge.is_running():
            return False
        opts = self.options()
        if resume_run:
            opts["resume"], opts["finetune"] = resume_run, False
        problem = self._data_problem(opts["data"])
        if problem is not None:
            self._error(problem)
            return False
        message = self.bridge.validate(opts)
        if message is not None:
            self._error(message)
            return False
        self.last_error = None
        if not resume_run:
            self.plots.clear()
            self.ticks = 0
        self._tick_clock.start()
        self._save_options(opts)
        self._set_state("starting")
        self._log(("Resuming " + resume_run) if resume_run else f"Starting {opts['cfg']} on {opts['data']}")
        if not self.bridge.start(opts):
            self._set_state("idle")
            return False
        return True

    def stop_training(self) -> None:
        if self.bridge.is_running():
            self.bridge.stop()
            self._set_state("stopping")

    def resume_training(self) -> bool:
        run_dir = self.bridge.last_run_dir
        if not run_dir:
            self._error("There is no run to resume yet.")
            return False
        return self.start_training(resume_run=run_dir)

    def open_latest_snapshot(self) -> None:
        if self.latest_snapshot:
            self.open_snapshot_requested.emit(self.latest_snapshot)

    def _on_tick(self, info: dict) -> None:
        if self._state == "starting":
            self._set_state("running")
        self.ticks += 1
        stats = dict(info.get("stats", {}))
        if int(info.get("tick", 0)) == 0:
            # The first tick's time includes start-up (imports, building the networks).
            stats.pop("Timing/sec_per_kimg", None)
        self.plots.add_tick(info.get("kimg", 0.0), stats)
        kimg, total = float(info.get("kimg", 0.0)), float(info.get("total_kimg", 0.0) or 0.0)
        self.progress.setValue(int(1000 * min(kimg / total, 1.0)) if total > 0 else 0)
        self.progress.setFormat(f"{kimg:.3f} / {total:g} kimg")
        self.headline.setText(f"{self._state_text()} — tick {info.get('tick', 0)}, {kimg:.3f} kimg")
        parts = []
        spk = _finite(info.get("sec_per_kimg"))
        if spk is not None:
            parts.append(f"{spk:.1f} s/kimg")
        eta = _finite(info.get("eta_sec"))
        if eta is not None and not info.get("done"):
            parts.append(f"ETA {_duration(eta)}")
        stats = info.get("stats", {})
        for key, label in (("Loss/G/loss", "G"), ("Loss/D/loss", "D"), ("Progress/augment", "p")):
            value = _finite(stats.get(key))
            if value is not None:
                parts.append(f"{label} {value:.3f}")
        for key, value in stats.items():
            if key.startswith("Metrics/") and _finite(value) is not None:
                parts.append(f"{key.split('/', 1)[1]} {value:.2f}")
        self.details.setText("   ·   ".join(parts))
        if info.get("snapshot_path"):
            self.latest_snapshot = info["snapshot_path"]
            metrics = ", ".join(
                f"{k.split('/', 1)[1]} {v:.2f}" for k, v in stats.items() if k.startswith("Metrics/")
            )
            suffix = f": {metrics}" if metrics else ""
            self._log(f"tick {info.get('tick', 0)} · {kimg:.3f} kimg · snapshot{suffix}")
            self.snapshot_label.setText(
                f"{os.path.basename(self.latest_snapshot)}\nin {info.get('run_dir', '')}"
            )
        if info.get("sample_grid_path"):
            self.show_grid(info["sample_grid_path"])
        if info.get("message"):
            self._log(f"tick {info.get('tick', 0)}: {info['message']}")
        self._update_buttons()

    def show_grid(self, path: str) -> None:
        pixmap = QPixmap(path)
        if pixmap.isNull():
            return
        self.latest_grid = path
        self._grid_pixmap = pixmap
        self._fit_grid()

    def _fit_grid(self) -> None:
        if self._grid_pixmap is None:
            return
        size = self.preview.contentsRect().size()
        pm = self._grid_pixmap
        # Small grids are scaled up by whole pixels (sharp), anything else smoothly to fit.
        factor = min(size.width() / pm.width(), size.height() / pm.height())
        if factor >= 2:
            k = int(factor)
            fast = Qt.TransformationMode.FastTransformation
            scaled = pm.scaled(pm.width() * k, pm.height() * k, Qt.AspectRatioMode.KeepAspectRatio, fast)
        else:
            smooth = Qt.TransformationMode.SmoothTransformation
            scaled = pm.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, smooth)
        self.preview.setPixmap(scaled)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_grid()

    def _on_run_finished(self, summary: dict) -> None:
        if summary.get("snapshot_path"):
            self.latest_snapshot = summary["snapshot_path"]
        kimg = float(summary.get("kimg", 0.0))
        reason = summary.get("reason", "")
        what = {"done": "Finished", "stopped": "Stopped", "nonfinite": "Stopped by a NaN loss"}.get(
            reason, reason
        )
        self._set_state("idle")
        self.headline.setText(f"{what} at {kimg:.3f} kimg")
        if summary.get("message"):
            self._log(summary["message"])
        if self.latest_snapshot:
            self._log(f"Newest snapshot: {self.latest_snapshot}")
        if reason == "nonfinite":
            self._error(summary.get("message", "training stopped: a loss became NaN or inf"))

    def _on_run_failed(self, message: str) -> None:
        self._set_state("idle")
        self.headline.setText("Training did not run")
        self._error(message)

    # --- state ---------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        self._state = state
        running = state != "idle"
        if state == "starting":
            self.headline.setText("Starting… (building the networks)")
        elif state == "stopping":
            self.headline.setText("Stopping — writing a snapshot…")
        for w in (
            self.data_path,
            self.cfg,
            self.start_from,
            self.cond,
            self.cbase,
            self.cmax,
            self.zw_dim,
            self.map_depth,
            self.batch,
            self.gamma,
            self.kimg,
            self.tick_kimg,
            self.snap,
            self.aug,
            self.mirror,
            self.metrics_num,
            self.device,
            self.outdir,
            self.make_box,
        ):
            w.setEnabled(not running)
        for box in self.metric_boxes.values():
            box.setEnabled(not running)
        self.cond.setEnabled(not running and bool(self.dataset_info and self.dataset_info.get("labels")))
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self._state != "idle"
        info = self.dataset_info
        data_ok = info is not None and info.get("path") == self.data_path.text().strip()
        self.start_button.setEnabled(not running and data_ok)
        reason = ""
        if not (data_ok or running):
            checked = self._data_checked
            if not self.data_path.text().strip():
                reason = "Start needs a data set: choose a folder or zip of images."
            elif checked is None or checked.get("path") != self.data_path.text().strip():
                reason = "Checking the data set…"
            else:
                reason = f"Start needs a training data set. {self.data_info.text()}"
        self.start_reason.setText(reason)
        self.start_reason.setVisible(bool(reason))
        self.start_button.setToolTip(reason)
        estimating = bool(getattr(self.bridge, "estimating", lambda: False)())
        self.estimate_button.setEnabled(not running and data_ok and not estimating)
        self.stop_button.setEnabled(running and self._state != "stopping")
        self.resume_button.setEnabled(not running and bool(self.bridge.last_run_dir))
        self.open_button.setEnabled(bool(self.latest_snapshot))

    def _state_text(self) -> str:
        return {"running": "Training", "stopping": "Stopping", "starting": "Starting"}.get(
            self._state, "Idle"
        )

    def _error(self, message: str) -> None:
        self.last_error = message
        self.details.setText(f"<span style='color:#c0392b'>{html.escape(message)}</span>")
        self._log("Error: " + message)

    def _log(self, text: str) -> None:
        if text:
            self.log.appendPlainText(text)

    # --- closing -------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        if self.bridge.is_running():
            answer = QMessageBox.question(
                self, "Training is running", "Stop training and close? A snapshot is written first."
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.bridge.shutdown(self.shutdown_timeout_ms)
        super().closeEvent(event)

    def reject(self) -> None:
        if self.bridge.is_running():
            self.close()  # asks first
            return
        self.bridge.shutdown(self.shutdown_timeout_ms)
        super().reject()


_METRIC_LABELS = {
    "fid50k_full": "FID",
    "kid50k_full": "KID",
    "eqt50k_int": "EQ-T",
    "eqt50k_frac": "EQ-T frac",
    "eqr50k": "EQ-R",
    "swd": "SWD",
}
_METRIC_TIPS = {
    "fid50k_full": "Fréchet Inception Distance (needs the Inception weights; skipped otherwise)",
    "kid50k_full": "Kernel Inception Distance (needs the Inception weights)",
    "eqt50k_int": "Translation equivariance, integer shifts (PSNR dB; StyleGAN3)",
    "eqt50k_frac": "Translation equivariance, fractional shifts (PSNR dB; StyleGAN3)",
    "eqr50k": "Rotation equivariance (PSNR dB; StyleGAN3)",
    "swd": "Sliced Wasserstein distance (no weights needed)",
}


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "forever"
    seconds = int(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
