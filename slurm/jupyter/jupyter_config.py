# sifkernel: a job's kernels first, whatever the launcher did to JUPYTER_PATH.
#
# Installed as /etc/jupyter/jupyter_config.py (the package) or
# <prefix>/etc/jupyter/jupyter_config.py (make install): every Jupyter
# application (notebook, lab, server, jupyterhub-singleuser, `jupyter
# kernelspec`, from Debian, a venv or conda alike) runs this base config
# file from the system config directories, before it looks for kernels,
# even when it is started with --config. Inside a Slurm job whose kernels
# sifkernel prepared (SIFKERNEL_JOB_DIR, set by the TaskProlog, `sifkernel
# activate` or `sifkernel run`), it puts the job's kernel directory back at
# the front of JUPYTER_PATH, where launchers that set JUPYTER_PATH outright
# (OSC's Open OnDemand Jupyter app does: export JUPYTER_PATH=...) dropped
# it, so Jupyter offers the job's copies (the staged image, the node's
# Apptainer, --nv on GPU nodes) instead of the user's own kernel.json.
# Anywhere else it does nothing. If your site has a jupyter_config.py of its
# own here, append this file to it.
import os as _os

_job = _os.environ.get("SIFKERNEL_JOB_DIR", "")
if _job and _os.path.isfile(_os.path.join(_job, "node.json")):
    _kernels = _os.path.join(_job, "jupyter")
    _rest = [p for p in _os.environ.get("JUPYTER_PATH", "").split(_os.pathsep) if p and p != _kernels]
    _os.environ["JUPYTER_PATH"] = _os.pathsep.join([_kernels] + _rest)
del _os, _job
