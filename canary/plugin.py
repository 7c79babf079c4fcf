"""`kubectl weir` (the console script `kubectl-weir`): status and steering of releases.

Every verb is a plain annotation, so `kubectl annotate deploy web weir.dev/command=promote --overwrite`
does the same as `kubectl weir promote web`. The controller consumes the command and removes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from canary.annotated import read_annotations, read_rollout
from canary.annotations import COMMAND, ENABLED, STATE

VERBS = ("promote", "abort", "pause", "resume", "retry")


def build_parser() -> argparse.ArgumentParser:
    # kubectl users put flags anywhere (`kubectl weir status web -n shop`): accept them before and after
    # the verb. SUPPRESS keeps a flag given before the verb from being reset by the verb's parser.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS,
                        help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context")
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="namespace (default: the context's, else 'default')")
    parser = argparse.ArgumentParser(prog="kubectl weir", description="Inspect and steer Weir releases.",
                                     parents=[common])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    status = verbs.add_parser("status", help="table of releases: phase, stage, weight, revision", parents=[common])
    status.add_argument("name", nargs="?")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    status.add_argument("-w", "--watch", action="store_true")
    status.add_argument("-o", "--output", choices=("table", "json"), default="table")
    for verb in VERBS:
        sub = verbs.add_parser(verb, help=f"{verb} the release of a Deployment", parents=[common])
        sub.add_argument("name")
        if verb == "promote":
            sub.add_argument("--full", action="store_true",
                             help="promote even if the canary is not ready yet (skips every remaining check)")
    undo = verbs.add_parser("undo", help="release a kept earlier revision again (progressively)",
                            parents=[common])
    undo.add_argument("name")
    undo.add_argument("--to-revision", type=int, help="the revision (default: the one before the current)")
    lint = verbs.add_parser("lint", help="check the weir.dev/rollout annotations of a manifest file",
                            parents=[common])
    lint.add_argument("file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "lint":
        return lint(args.file)
    api, namespace = _connect(args)
    apps = client.AppsV1Api(api)
    if args.verb == "status":
        return status(apps, namespace, args)
    command = args.verb
    if command == "promote" and args.full:
        command = "promote-full"
    if command == "undo" and args.to_revision is not None:
        command = f"undo:{args.to_revision}"
    try:
        apps.patch_namespaced_deployment(args.name, namespace, {"metadata": {"annotations": {COMMAND: command}}})
    except ApiException as error:
        if error.status == 404:
            print(f"error: deployment {namespace}/{args.name} not found", file=sys.stderr)
            return 1
        raise
    print(f"deployment.apps/{args.name} {command} requested")
    return 0


def _connect(args: argparse.Namespace) -> tuple[client.ApiClient, str]:
    kubeconfig = getattr(args, "kubeconfig", None)
    api = config.new_client_from_config(config_file=kubeconfig, context=getattr(args, "context", None))
    namespace = getattr(args, "namespace", None)
    if not namespace:
        try:
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            namespace = (active or {}).get("context", {}).get("namespace")
        except (config.ConfigException, OSError):
            namespace = None
    return api, namespace or "default"


def rows(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for deployment in deployments:
        meta = deployment["metadata"]
        annotations = meta.get("annotations") or {}
        if ENABLED not in annotations and STATE not in annotations:
            continue
        state = read_annotations(deployment).state
        out.append({
            "namespace": meta["namespace"],
            "name": meta["name"],
            "phase": state.phase.value if state else "Pending",
            "stage": state.stage_name if state else "",
            "weight": state.weight if state else 0,
            "revision": state.revision if state else 0,
            "message": state.message if state else "waiting for the controller",
        })
    return out


def render_table(entries: list[dict[str, Any]]) -> str:
    headers = ("NAMESPACE", "NAME", "PHASE", "STAGE", "WEIGHT", "REVISION", "MESSAGE")
    keys = ("namespace", "name", "phase", "stage", "weight", "revision", "message")
    table = [headers] + [tuple(str(e[k]) + ("%" if k == "weight" else "") for k in keys) for e in entries]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers) - 1)]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "   " + row[-1]
                     for row in table)


def status(apps: Any, namespace: str, args: argparse.Namespace) -> int:
    while True:
        if args.all_namespaces:
            listed = apps.list_deployment_for_all_namespaces(_preload_content=False)
        else:
            listed = apps.list_namespaced_deployment(namespace, _preload_content=False)
        items = json.loads(listed.data).get("items") or []
        if args.name:
            items = [i for i in items if i["metadata"]["name"] == args.name]
            if not items:
                print(f"error: deployment {namespace}/{args.name} not found", file=sys.stderr)
                return 1
        entries = rows(items)
        if args.output == "json":
            print(json.dumps(entries, indent=2))
        elif entries:
            print(render_table(entries))
        else:
            print("no Deployments managed by Weir")
        if not args.watch:
            return 0
        time.sleep(2)
        print()


def lint(path: str) -> int:
    import yaml

    problems = 0
    with open(path) as handle:
        documents = [d for d in yaml.safe_load_all(handle) if isinstance(d, dict)]
    for doc in documents:
        if doc.get("kind") != "Deployment":
            continue
        meta = doc.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        name = meta.get("name", "?")
        _, error = read_rollout(annotations)
        if error is not None:
            problems += 1
            print(f"{path}: deployment {name}: {error}")
            continue
        from canary.warnings import release_warnings

        for warning in release_warnings(doc):
            print(f"{path}: deployment {name}: warning: {warning}")
        print(f"{path}: deployment {name}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
