#!/usr/bin/env python3
"""Writes the committed scenario files in scenarios/ (see "Scenario files" in the README).

Reproducible: every file comes from its own seeded random.Random, so running this again gives byte-identical
output (checked by `python3 scripts/gen-scenarios.py --check`). Distances are metres, times seconds.

Radio range used for the layouts (Sources/CourierSim/RadioChannel.swift, RadioPhysics.lora): 14 dBm, path-loss
exponent 3.0, 31.2 dB at 1 m, SF9/125 kHz sensitivity -129 dBm -> about 5.3 km.
"""
import json
import math
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "scenarios"
RANGE_SF9 = 10 ** ((14 - 31.2 + 129) / 30)

SIZES = {"alert": (80, 160), "aid": (120, 300), "offer": (60, 150), "grievance": (200, 600),
         "minutes": (1500, 3000), "text": (40, 200)}


def size(rng, kind):
    lo, hi = SIZES[kind]
    return rng.randint(lo, hi)


def connected(ids, pos, extra=()):
    """Whether the relays form one mesh at SF9 range (plus extra pairs)."""
    adj = {i: set() for i in ids}
    for i in ids:
        for j in ids:
            if i < j and math.dist(pos[i], pos[j]) < RANGE_SF9 * 0.95:
                adj[i].add(j); adj[j].add(i)
    for a, b in extra:
        adj[a].add(b); adj[b].add(a)
    seen, todo = {ids[0]}, [ids[0]]
    while todo:
        for n in adj[todo.pop()]:
            if n not in seen:
                seen.add(n); todo.append(n)
    return len(seen) == len(ids)


def dump(path, s):
    """One JSON object; each node, link, message and event on its own line (readable diffs)."""
    lines = ["{"]
    keys = list(s.keys())
    for k_i, k in enumerate(keys):
        v = s[k]
        comma = "," if k_i < len(keys) - 1 else ""
        if isinstance(v, list):
            lines.append(f"  {json.dumps(k)}: [")
            for i, item in enumerate(v):
                lines.append("    " + json.dumps(item, separators=(", ", ": ")) + ("," if i < len(v) - 1 else ""))
            lines.append("  ]" + comma)
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v, separators=(', ', ': '))}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def node(i, x, y):
    return {"id": i, "x": round(x, 1), "y": round(y, 1)}


def triangle_of_trust():
    """Three assemblies (four relays each, within 300 m) that trust each other through one link per pair."""
    rng = random.Random(3)
    names = ["north", "east", "west"]
    centres = [(0, 2300), (2000, -1150), (-2000, -1150)]
    nodes, links, members = [], [], {}
    for a, (cx, cy) in zip(names, centres):
        members[a] = [f"{a}-{k}" for k in range(1, 5)]
        for m in members[a]:
            nodes.append(node(m, cx + rng.uniform(-300, 300), cy + rng.uniform(-300, 300)))
        for i, m in enumerate(members[a]):
            for n in members[a][i + 1:]:
                links.append({"a": m, "b": n, "loss": 0.02})
    for i, a in enumerate(names):
        b = names[(i + 1) % 3]
        links.append({"a": f"{a}-1", "b": f"{b}-1", "loss": 0.1})
    traffic = [{"at": 60, "from": "north-2", "to": "everyone", "kind": "alert", "bytes": 120},
               {"at": 300, "from": "east-3", "to": "everyone", "kind": "aid", "bytes": 220},
               {"at": 420, "from": "west-2", "to": "east-3", "kind": "offer", "bytes": 90},
               {"at": 480, "from": "north-4", "to": "east-3", "kind": "offer", "bytes": 110}]
    t = 900
    while t < 6600:
        a, b = rng.sample([n["id"] for n in nodes], 2)
        kind = rng.choice(["text", "text", "text", "grievance"])
        traffic.append({"at": t, "from": a, "to": b, "kind": kind, "bytes": size(rng, kind)})
        t += rng.randint(60, 240)
    for a in names:
        traffic.append({"at": 6900, "from": f"{a}-1", "to": "everyone", "kind": "minutes", "bytes": size(rng, "minutes")})
    events = [{"at": 1800, "type": "partition", "groups": [members["north"], members["east"] + members["west"]]},
              {"at": 3000, "type": "heal"},
              {"at": 4200, "type": "down", "nodes": ["east-1"]},
              {"at": 5400, "type": "up", "nodes": ["east-1"]}]
    return {"name": "triangle-of-trust",
            "description": "Three assemblies of four relays; each assembly hears itself, and one relay of each "
                           "links to one of each other assembly. The north assembly is cut off for 20 minutes, "
                           "then east's linking relay is down for 20 minutes.",
            "seed": 3, "duration": 7200,
            "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "duty_cycle": 0.1},
            "nodes": nodes, "links": links, "traffic": traffic, "events": events}


def valley_chain():
    """Twelve relays along a valley, about 4 km apart: each hears only its neighbours."""
    rng = random.Random(12)
    nodes = []
    for k in range(12):
        nodes.append(node(f"v{k + 1:02d}", k * 4000 + rng.uniform(-300, 300), rng.uniform(-600, 600)))
    ids = [n["id"] for n in nodes]
    traffic = [{"at": 120, "from": "v01", "to": "everyone", "kind": "alert", "bytes": 140},
               {"at": 900, "from": "v12", "to": "everyone", "kind": "aid", "bytes": 260},
               {"at": 1500, "from": "v07", "to": "v12", "kind": "offer", "bytes": 100}]
    t = 600
    while t < 13800:
        a, b = rng.sample(ids, 2)
        traffic.append({"at": t, "from": a, "to": b, "kind": "text", "bytes": size(rng, "text")})
        t += rng.randint(120, 420)
    traffic.sort(key=lambda m: m["at"])
    events = [{"at": 3600, "type": "down", "nodes": ["v06"]},
              {"at": 7200, "type": "up", "nodes": ["v06"]},
              {"at": 9000, "type": "quiet", "nodes": ["v09"]},
              {"at": 10800, "type": "unquiet", "nodes": ["v09"]},
              {"at": 11400, "type": "courier", "path": ["v01", "v04", "v08", "v12"], "dwell": 300}]
    return {"name": "valley-chain-12",
            "description": "Twelve relays strung along a valley road, each in range of its neighbours only. "
                           "The middle relay is down for an hour, then v09 keeps radio silence for half an hour; "
                           "late on, someone drives a relay up the valley.",
            "seed": 12, "duration": 14400,
            "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "duty_cycle": 0.1},
            "nodes": nodes, "traffic": traffic, "events": events}


def regional():
    """200 relays scattered over 30 km x 30 km: one LoRa mesh, SF9, 1% duty cycle."""
    rng = random.Random(200)
    while True:
        pos = {f"r{k + 1:03d}": (rng.uniform(0, 30000), rng.uniform(0, 30000)) for k in range(200)}
        ids = list(pos)
        if connected(ids, pos):
            break
    nodes = [node(i, *pos[i]) for i in ids]
    traffic = [{"at": 300, "from": "r001", "to": "everyone", "kind": "alert", "bytes": 120}]
    t = 60
    while t < 6900:
        a, b = rng.sample(ids, 2)
        kind = rng.choice(["text"] * 6 + ["aid", "offer", "grievance"])
        to = "everyone" if kind == "aid" else b
        m = {"at": t, "from": a, "to": to, "kind": kind, "bytes": size(rng, kind)}
        # An offer drawn here went to a random relay that had asked for nothing; the offers are made below, from the
        # requests. The draw stays, so the rest of rng's stream (the other messages, the downed relays) is unchanged.
        if kind != "offer":
            traffic.append(m)
        t += rng.randint(10, 50)
    traffic.append({"at": 4000, "from": "r100", "to": "everyone", "kind": "alert", "bytes": 150})
    west = [i for i in ids if pos[i][0] < 15000]
    events = [{"at": 2400, "type": "partition", "groups": [west]},
              {"at": 3600, "type": "heal"},
              {"at": 5000, "type": "down", "nodes": rng.sample(ids, 10)},
              {"at": 6200, "type": "up", "nodes": []}]
    events[3]["nodes"] = events[2]["nodes"]
    # Each aid request is answered by two offers, as in federation(): from two of the requester's six nearest relays
    # (neighbours, a few km away) that are up then, addressed to the requester, 2-20 minutes after the request (its
    # respond-by is 30 minutes, DrillSimulator.aidRespondByMinutes), before the requester's next request (the drill
    # matches an offer to its recipient's latest request) and by 6,900 s (answered within the run). Their own stream
    # (seed 201): the offers leave everything else as it was.
    offers_rng = random.Random(201)
    downed, down_from, down_to = set(events[2]["nodes"]), events[2]["at"], events[3]["at"]
    requests = [m for m in traffic if m["kind"] == "aid"]
    for m in requests:
        later = [r["at"] for r in requests if r["from"] == m["from"] and r["at"] > m["at"]]
        last = min([m["at"] + 1200, 6900] + [at - 1 for at in later])
        near = sorted((i for i in ids if i != m["from"]), key=lambda i: math.dist(pos[i], pos[m["from"]]))[:6]
        helpers = []
        for _ in range(2):
            at = offers_rng.randint(min(m["at"] + 120, last), last)
            up = [i for i in near if i not in helpers and not (i in downed and down_from <= at < down_to)]
            helpers.append(offers_rng.choice(up))
            traffic.append({"at": at, "from": helpers[-1], "to": m["from"], "kind": "offer", "bytes": size(offers_rng, "offer")})
    traffic.sort(key=lambda m: (m["at"], m["from"]))
    return {"name": "regional-200",
            "description": "A 200-relay regional LoRa mesh (SF9/125 kHz, 1% duty cycle) on a 30 km square. "
                           "Each aid request gets two offers from relays near the requester. West and east are cut apart "
                           "for 20 minutes; later ten relays are down for 20 minutes.",
            "seed": 200, "duration": 7200,
            "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "duty_cycle": 0.01},
            "nodes": nodes, "traffic": traffic, "events": events}


def federation():
    """1,000 relays in 40 clusters of 25 (8 x 5 grid, 40 km apart, out of each other's range), joined by a few long
    links inside 8 regions of 5 clusters and between 3 pairs of regions; the other regions meet only through the
    weekly courier, who passes on this day."""
    rng = random.Random(1000)
    clusters, pos = [], {}
    for c in range(40):
        cx, cy = (c % 8) * 40000, (c // 8) * 40000
        while True:
            members = {f"c{c + 1:02d}-{k + 1:02d}": (cx + rng.uniform(-4500, 4500), cy + rng.uniform(-4500, 4500))
                       for k in range(25)}
            if connected(list(members), members):
                break
        pos.update(members)
        clusters.append(list(members))
    ids = list(pos)
    nodes = [node(i, *pos[i]) for i in ids]
    # Regions: clusters 5 at a time; each region a star of long links from its first cluster's first relay.
    regions = [list(range(r * 5, r * 5 + 5)) for r in range(8)]
    links = []
    for reg in regions:
        hub = clusters[reg[0]][0]
        for c in reg[1:]:
            links.append({"a": hub, "b": clusters[c][0], "loss": 0.1})
    for r1, r2 in [(0, 1), (2, 3), (4, 5)]:
        links.append({"a": clusters[regions[r1][-1]][1], "b": clusters[regions[r2][0]][1], "loss": 0.15})
    traffic = []
    for k in range(10):
        src = rng.choice(ids)
        traffic.append({"at": rng.randint(600, 80000), "from": src, "to": "everyone", "kind": "alert", "bytes": size(rng, "alert")})
    for k in range(40):
        src = rng.choice(ids)
        at = rng.randint(600, 79000)
        traffic.append({"at": at, "from": src, "to": "everyone", "kind": "aid", "bytes": size(rng, "aid")})
        same = clusters[ids.index(src) // 25]
        for helper in rng.sample([m for m in same if m != src], 2):
            traffic.append({"at": at + rng.randint(120, 1800), "from": helper, "to": src, "kind": "offer", "bytes": size(rng, "offer")})
    for c in clusters:
        traffic.append({"at": rng.randint(64800, 72000), "from": c[0], "to": "everyone", "kind": "minutes", "bytes": size(rng, "minutes")})
    for k in range(1200):
        a = rng.choice(ids)
        c = ids.index(a) // 25
        b = rng.choice([m for m in clusters[c] if m != a]) if rng.random() < 0.8 else rng.choice([m for m in ids if m != a])
        kind = "grievance" if rng.random() < 0.05 else "text"
        traffic.append({"at": rng.randint(0, 84000), "from": a, "to": b, "kind": kind, "bytes": size(rng, kind)})
    traffic.sort(key=lambda m: (m["at"], m["from"]))
    downed = rng.sample(ids, 25)
    hubs = [clusters[reg[0]][0] for reg in regions]
    events = [{"at": 21600, "type": "courier", "path": hubs, "dwell": 1800},
              {"at": 30000, "type": "partition", "groups": [[m for c in regions[0] for m in clusters[c]]]},
              {"at": 37200, "type": "heal"},
              {"at": 43200, "type": "down", "nodes": downed},
              {"at": 50400, "type": "up", "nodes": downed}]
    return {"name": "federation-1000",
            "description": "A federation of 1,000 relays: 40 clusters of 25 on an 8 x 5 grid 40 km apart, each "
                           "cluster a LoRa mesh; long links (link_mode also) join the clusters of each of 8 regions "
                           "and three pairs of regions; the weekly courier visits every region's hub on this day. "
                           "Region 1 is cut off for two hours; 25 relays are down for two hours.",
            "seed": 1000, "duration": 86400,
            "radio": {"kind": "lora", "sf": 9, "bw": 125000, "cr": 5, "duty_cycle": 0.01},
            "nodes": nodes, "links": links, "link_mode": "also", "traffic": traffic, "events": events}


def main():
    files = {"triangle-of-trust.json": triangle_of_trust(), "valley-chain-12.json": valley_chain(),
             "regional-200.json": regional(), "federation-1000.json": federation()}
    check = "--check" in sys.argv[1:]
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, s in files.items():
        text = dump(name, s)
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"{path.relative_to(OUT.parent)}: {len(s['nodes'])} relays, {len(s['traffic'])} messages, {len(s['events'])} events")
    if check:
        if stale:
            print("out of date (run python3 scripts/gen-scenarios.py): " + ", ".join(stale), file=sys.stderr)
            sys.exit(1)
        print("scenarios/ matches scripts/gen-scenarios.py")


if __name__ == "__main__":
    main()
