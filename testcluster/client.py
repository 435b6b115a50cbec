# Starts a kernel by name with the real jupyter_client, runs code in it, and
# prints one RESULT line of JSON: what the code printed, and the kernelspec
# jupyter_client found. The cluster tests run it inside Slurm jobs with the
# default code, which reads the marker file only the test image has and
# looks for Apptainer's /.singularity.d (so it proves the kernel runs inside
# the image, under Apptainer); the unit tests run it with "print(1+1)".
#   python3 client.py KERNEL_NAME [CODE]
import json
import os
import sys

# Seconds a kernel may take to answer: 60, or more where the test cluster is
# emulated (the VM cluster under QEMU's TCG sets SIFKERNEL_KERNEL_TIMEOUT).
TIMEOUT = int(os.environ.get("SIFKERNEL_KERNEL_TIMEOUT") or 60)

from jupyter_client.manager import KernelManager

name = sys.argv[1]
code = sys.argv[2] if len(sys.argv) > 2 else \
    "import os; print(open('/sifkernel-marker').read().strip(), os.path.isdir('/.singularity.d'))"
# jupyter_client picks the kernel's ports, frees them, and the kernel binds
# them moments later: two kernels starting at once on one host can pick the
# same port, and one dies ("Address already in use"). A person restarts it;
# so does this client, once, and says so in the result.
attempts = 0
while True:
    attempts += 1
    km = KernelManager(kernel_name=name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        break
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        if attempts == 2:
            raise
msg_id = kc.execute(code)
out = ""
while True:
    msg = kc.get_iopub_msg(timeout=TIMEOUT)
    if msg["parent_header"].get("msg_id") != msg_id:
        continue
    if msg["msg_type"] == "stream":
        out += msg["content"]["text"]
    elif msg["msg_type"] == "error":
        out += "ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"]
    elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
        break
kc.stop_channels()
km.shutdown_kernel()  # graceful, as Jupyter stops kernels: Apptainer then unmounts its image
del kc
print("RESULT " + json.dumps({"out": out, "argv": km.kernel_spec.argv, "display_name": km.kernel_spec.display_name,
                              "jupyter_path": os.environ.get("JUPYTER_PATH", ""), "attempts": attempts}), flush=True)
