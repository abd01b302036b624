#!/usr/bin/env python3
"""Writes relay(1), a man page in roff, from `relay --experimental-dump-help` (swift-argument-parser's description
of every command, option and its help text) read on stdin. scripts/build-deb.sh runs it:

    relay --experimental-dump-help | python3 scripts/manpage.py --date 2026-12-05 > relay.1

swift-argument-parser's own `swift package plugin generate-manual` reads the same help and works offline, but it
builds every product of the package first (courier-bench, courier-dev, the fuzzer; in release mode unless given
`--configuration debug`): 35 s on 2 cores when a debug build is already there, minutes more on a fresh clone or a
Pi. This script needs only the relay binary the package ships, and adds the FILES and EXIT STATUS sections."""

import argparse
import json
import sys


def roff(text):
    """Escapes text for roff: backslashes, and a leading dot or quote that would read as a request."""
    out = []
    for line in (text or "").split("\n"):
        line = line.replace("\\", "\\e").replace("-", "\\-")
        # Break points (\\:, zero width) after commas and between option brackets, so a long link spec such as
        # mqtt:HOST[:PORT][,topic=ROOT][,tls]... can wrap instead of overflowing the line.
        line = line.replace(",", ",\\:").replace("][", "]\\:[")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def synopsis_of(arg):
    names = [n for n in arg.get("names") or []]
    pref = arg.get("preferredName") or (names[0] if names else None)
    if arg["kind"] == "positional":
        s = "\\fI" + arg.get("valueName", "value") + "\\fR"
    else:
        dash = "--" if pref and pref["kind"] == "long" else "-"
        s = "\\fB" + dash + pref["name"].replace("-", "\\-") + "\\fR" if pref else ""
        if arg["kind"] == "option":
            s += " \\fI" + arg.get("valueName", "value") + "\\fR"
    if arg.get("isRepeating"):
        s += " ..."
    return "[" + s + "]" if arg.get("isOptional") else s


def option_label(arg):
    if arg["kind"] == "positional":
        return "\\fI" + arg.get("valueName", "value") + "\\fR"
    labels = []
    for n in arg.get("names") or []:
        dash = "--" if n["kind"] == "long" else "-"
        label = "\\fB" + dash + n["name"].replace("-", "\\-") + "\\fR"
        if arg["kind"] == "option":
            label += " \\fI" + arg.get("valueName", "value") + "\\fR"
        labels.append(label)
    return ", ".join(labels)


def arguments(cmd, root=False):
    """The arguments a command shows in its help; --help and --version only once, on the root command."""
    def common(a):
        return any(n["name"] in ("help", "version") for n in a.get("names") or [])
    return [a for a in cmd.get("arguments") or [] if a.get("shouldDisplay", True) and (root or not common(a))]


def describe(cmd, path, out):
    """The options of one command, then its subcommands, each under its full name (`relay queue tail`)."""
    args = arguments(cmd)
    out.append(".SS " + roff(" ".join(path)))
    out.append(".B " + roff(" ".join(path)))
    out.append(" ".join(synopsis_of(a) for a in args))
    out.append(".PP")
    out.append(roff(cmd.get("abstract", "")))
    if cmd.get("discussion"):
        out.append(".PP")
        out.append(roff(cmd["discussion"]))
    for a in args:
        out.append(".TP")
        out.append(option_label(a))
        text = a.get("abstract", "")
        if a.get("defaultValue") not in (None, "", "false"):
            text += " (default: %s)" % a["defaultValue"]
        if a.get("allValues"):
            text += " Values: %s." % ", ".join(a["allValues"])
        out.append(roff(text))
        if a.get("discussion"):
            out.append(roff(a["discussion"]))
    for sub in cmd.get("subcommands") or []:
        if sub.get("shouldDisplay", True) and sub["commandName"] != "help":
            describe(sub, path + [sub["commandName"]], out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--date", required=True, help="the date on the page (YYYY-MM-DD)")
    p.add_argument("--section", default="1")
    opts = p.parse_args()
    info = json.load(sys.stdin)
    if info.get("serializationVersion") != 0:
        sys.exit("manpage.py: unknown dump-help format %r" % info.get("serializationVersion"))
    root = info["command"]
    name = root["commandName"]
    out = [
        '.TH %s %s "%s" "Courier" "User Commands"' % (name.upper(), opts.section, opts.date),
        ".ad l",
        ".nh",
        ".SH NAME",
        "%s \\- %s" % (name, roff(root.get("abstract", "").rstrip("."))),
        ".SH SYNOPSIS",
        ".B %s" % name,
        "\\fIcommand\\fR [\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        roff(root.get("abstract", "")),
        ".PP",
        "Every command takes \\fB\\-\\-help\\fR. The data directory is given by \\fB\\-\\-data\\-dir\\fR or "
        "\\fBRELAY_DATA_DIR\\fR; the relay reads \\fIrelay.conf\\fR there (in the Debian package a link to "
        "\\fI/etc/courier/relay.conf\\fR).",
        ".SH COMMANDS",
    ]
    for a in arguments(root, root=True):
        out += [".TP", option_label(a), roff(a.get("abstract", ""))]
    for sub in root.get("subcommands") or []:
        if sub.get("shouldDisplay", True) and sub["commandName"] != "help":
            describe(sub, [name, sub["commandName"]], out)
    out += [
        ".SH EXIT STATUS",
        roff(root.get("discussion", "")),
        ".SH FILES",
        ".TP", "\\fI/etc/courier/relay.conf\\fR", "The configuration of the relay service (a conffile).",
        ".TP", "\\fI/var/lib/courier\\fR", "The service's data directory: identity.json and network.json (keys), "
        "courier.db (queue, inbox, trust list), relay.lock.",
        ".TP", "\\fI/lib/systemd/system/relay.service\\fR", "The systemd unit: \\fBsystemctl enable \\-\\-now relay\\fR.",
        ".SH SEE ALSO",
        "/usr/share/doc/courier/README.md.gz",
    ]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
