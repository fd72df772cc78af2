"""Names vulture (`make lint`, settings in pyproject.toml) cannot see being used. Never run.

Each line names something that is called by a framework or read indirectly, not by our code."""

_ = object()

# Qt calls these overrides of QWidget / QObject methods.
_.paintEvent
_.wheelEvent
_.mouseDoubleClickEvent
_.dragEnterEvent
_.dropEvent
_.eventFilter
_._export  # CompareWindow keeps its export dialog alive (a Python reference) while it is open

# torch.nn.Module.__repr__ calls extra_repr; pickle.Unpickler calls find_class / persistent_load.
_.extra_repr
_.find_class
_.persistent_load

# Parameters a calling convention requires: signal handlers (signum, frame), the numpy
# reconstructors our safe unpickler stands in for (align, typecode).
signum
align
typecode

# Dataclass fields read through vars() / dataclasses.asdict() (the bridges' plain dicts).
_.transformed  # gan.render.EquivarianceView

# Entry points named on command lines of child processes (python -c "...", multiprocessing).
_.background_main  # bench/contention.py
_.foreground_main
_.memory_child  # bench/generator.py

# pytest: autouse fixtures, fixtures requested by name, module marks, HTTP handler hooks.
pytestmark
qapp
one_thread
fail_on_qt_warnings
no_leaked_qthreads
adopted_tasks_end_before_qt
no_hang
umask_022
no_env
_.log_message
_.dummy  # tests/gan/test_metrics_fid.py: a parameter, so the stand-in module has a device
_.network  # tests/support/official_layout.py: a module attribute of the fake dnnlib layout

# Other work owns these files now (issue #22 left them alone); to be looked at there.
_.detect_faces  # gan/photo/mtcnn.py
LANDMARK_NAMES  # gan/photo/mtcnn.py
bias_act_cpu  # ops_cuda/_cpu_ops.py, _cuda_ops.py: module attributes filled in by the loader
upfirdn2d_cpu
bias_act_cuda
upfirdn2d_cuda
filtered_lrelu_cuda
conv3x3_cpu  # ops_cuda/_dispatch.py IMPL_TABLE names the conv3x3 implementations as strings
conv3x3_ref
scaled_conv3x3_cpu
scaled_conv3x3_ref
conv_transpose_cpu
conv_transpose_ref
argv_text  # scripts/check_readme_commands.py
