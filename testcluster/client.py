# Run inside a Slurm job by the cluster tests: start a kernel by name with
# the real jupyter_client, run code that reads the image's marker file (so
# it proves where the kernel runs), and print one RESULT line of JSON.
import json
import os
import sys

from jupyter_client.manager import KernelManager

name = sys.argv[1]
km = KernelManager(kernel_name=name)
km.start_kernel()
kc = km.client()
kc.start_channels()
kc.wait_for_ready(timeout=60)
msg_id = kc.execute("print(open('/sifkernel-marker').read().strip())")
out = ""
while True:
    msg = kc.get_iopub_msg(timeout=60)
    if msg["parent_header"].get("msg_id") != msg_id:
        continue
    if msg["msg_type"] == "stream":
        out += msg["content"]["text"]
    elif msg["msg_type"] == "error":
        out += "ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"]
    elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
        break
kc.stop_channels()
km.shutdown_kernel(now=True)
del kc
print("RESULT " + json.dumps({"out": out, "argv": km.kernel_spec.argv,
                              "jupyter_path": os.environ.get("JUPYTER_PATH", "")}), flush=True)
