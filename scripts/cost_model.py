"""Cost model from local executions (scripts/cost-model.sh writes the inputs).

State transitions are the states entered, per execution, as Step Functions Standard bills
them. Lambda durations are measured at the local invoke proxy: debug binaries against the
emulator, so an overestimate of a release arm64 function against AWS. Prices: us-east-1 list
prices (arm64 Lambda; Standard per transition; Express per request and per GB-second of
execution at the 64 MB minimum), written below so the arithmetic can be checked.
"""
import json
import pathlib
import sys
from collections import Counter, defaultdict

STANDARD_PER_TRANSITION = 0.025 / 1000
EXPRESS_PER_REQUEST = 1.00 / 1_000_000
EXPRESS_PER_GB_S = 0.00001667
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_ARM_PER_GB_S = 0.0000133334


def main(folder: str, memory_mb: str) -> None:
    out = pathlib.Path(folder)
    memory_gb = int(memory_mb) / 1024
    transitions = Counter()  # machine -> states entered
    executions = Counter()  # machine -> executions
    for doc_path in sorted(out.glob("execution-*.json")):
        doc = json.loads(doc_path.read_text())
        machine_of = {e["execution"]: e["machine"] for e in doc["executions"]}
        for e in doc["events"]:
            if e["type"] == "StateEntered":
                transitions[machine_of.get(e["execution"], "sweep")] += 1
        for e in doc["executions"]:
            executions[e["machine"]] += 1
    calls = defaultdict(list)  # function -> durations (ms)
    for inv_path in sorted(out.glob("invocations-*.jsonl")):
        for line in inv_path.read_text().splitlines():
            rec = json.loads(line)
            # /2015-03-31/functions/<name>/invocations
            name = rec["path"].split("/functions/")[1].split("/")[0]
            calls[name].append(rec["duration_ms"])
    # The rotation machine's functions are the api-key function's invocations.
    rotations = executions["api-key-rotation"]
    print("## Measured (two sweeps of the demo account: today and 8 days later)\n")
    print("| machine | executions | states entered | per execution |")
    print("| --- | ---: | ---: | ---: |")
    for m in sorted(executions):
        print(f"| {m} | {executions[m]} | {transitions[m]} | {transitions[m] / executions[m]:.1f} |")
    print("\n| function | invocations | mean ms | max ms | GB-s (at %d MB) |" % int(memory_mb))
    print("| --- | ---: | ---: | ---: | ---: |")
    for f in sorted(calls):
        d = calls[f]
        gbs = sum(d) / 1000 * memory_gb
        print(f"| {f} | {len(d)} | {sum(d) / len(d):.0f} | {max(d):.0f} | {gbs:.3f} |")
    if not rotations:
        print("\nno API key rotation ran; nothing to price per rotation")
        return
    per_rot_transitions = transitions["api-key-rotation"] / rotations
    api = calls.get("keyrotor-api-key", [])
    per_rot_invocations = len(api) / rotations
    per_rot_gbs = sum(api) / 1000 * memory_gb / rotations
    lambda_cost = 1000 * (per_rot_invocations * LAMBDA_PER_REQUEST + per_rot_gbs * LAMBDA_ARM_PER_GB_S)
    standard = 1000 * per_rot_transitions * STANDARD_PER_TRANSITION
    print("\n## Per API key rotation\n")
    print(f"- state transitions: {per_rot_transitions:.1f}; Lambda invocations: {per_rot_invocations:.1f}; "
          f"Lambda GB-s: {per_rot_gbs:.3f}")
    print(f"- 1,000 rotations, Standard workflow: ${standard:.3f} transitions + ${lambda_cost:.3f} Lambda "
          f"= ${standard + lambda_cost:.3f}")
    print("- Express workflow: not possible for the rotation machine: its Wait states hold the grace "
          "period and the recovery window (days), an Express execution lasts at most 5 minutes.")
    sweeps = executions["sweep"]
    sweep_transitions = transitions["sweep"] / sweeps
    sweep_ms = sum(sum(calls[f]) for f in calls if f != "keyrotor-api-key") / sweeps
    express_sweep = EXPRESS_PER_REQUEST + (sweep_ms / 1000) * (64 / 1024) * EXPRESS_PER_GB_S
    standard_sweep = sweep_transitions * STANDARD_PER_TRANSITION
    print("\n## Per sweep (the scheduled machine, rotations excluded)\n")
    print(f"- state transitions: {sweep_transitions:.1f}; Standard: ${standard_sweep:.6f}; Express "
          f"(lasting as long as its functions ran, {sweep_ms / 1000:.1f} s): ${express_sweep:.6f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
