#!/usr/bin/env python3
"""Messages from licensed text no one on this project wrote, for the wire benchmark's held-out set and for
training dictionaries. Two public sources (not in this repository; give their folders):

  UDHR      the Universal Declaration of Human Rights in Standard Arabic and Northern Kurdish as published by the
            Unicode UDHR project (https://unicode.org/udhr/, files udhr_arb.xml and udhr_kmr.xml; text (c) OHCHR,
            which allows its free reproduction).
  KURDBLARK KurdishBLARK/InterdialectCorpus (https://github.com/KurdishBLARK/InterdialectCorpus, commit a27afa39,
            CC BY-NC-SA 4.0): news sentences in Sorani, Kurmanji and English aligned by hand (Ahmadi et al., WMT 2020).

Usage: scripts/licensed-messages.py UDHR_DIR KURDBLARK_DIR OUT_DIR

Writes, in the corpus format (one {"id","lang","kind","text"} a line):
  OUT_DIR/heldout/*.jsonl  120 messages of 40-400 B, 30 a language: English and Sorani from KURDBLARK's CKB-ENG
                           files, Arabic and Kurmanji from the UDHR. Never trained on.
  OUT_DIR/train/*.jsonl    every message of KURDBLARK's CKB-KMR (Sorani, Kurmanji) and KMR-ENG (Kurmanji,
                           English) files: a different part of the corpus than the held-out set.
  OUT_DIR/federation/      one federation's traffic for a federation dictionary: the first 210 messages of each
                           language of train/ (ckb, en, kmr), split by FNV-1a-32 of the id mod 5 (0: measured):
                           train/messages.jsonl the first 500 others, measure/messages.jsonl the first 120 held.
Checksums (SHA-256) of the files measured in the README:
  udhr_arb.xml                  ac23121f72df07a5878a8fa40d693a7d5325ccdde9b663bd51a74e6c257ce393
  udhr_kmr.xml                  559338ad32cc9e042213c45bdbc50451549dd705da0b289e04eafa27676138de
  CKB-ENG/CKB-ENG.ENG_no_tag.txt 25574f3d20fbf83bdc0f717136853e488d67111aa023f44274f5573ca32c81f0
  CKB-ENG/CKB-ENG.CKB_no_tag.txt 6a29f7de1cee8c6d4f9f4657ac19e659d8b361596b6a5f7c1fae3f1be41365d8
  CKB-KMR/CKB-KMR_ckb_no_tag.txt 8f5347dfc3dc90cdf23246564cd3c2ff2734400c8229fc98b8996d01ffb1c5a8
  CKB-KMR/CKB-KMR_kmr_no_tag.txt d53b52c66cf0c84d7f3fb77dd570e13065980ada263955cbeb3215099f78d996
  KMR-ENG/KMR-ENG.ENG_no_tag.txt 5ec7e24d09522012e2b5e0f481f7c822fbe300e1986a1bd8ee05728108953dbe
  KMR-ENG/KMR-ENG.KMR_no_tag.txt 0e5c25f4d358c582664b63f5569f01badba869dcdd30868ed71b0baad49b8ad1
A message is one line (sentence) or paragraph, joined with the next while it is under 40 B; longer than 400 B is
skipped. The output depends only on the input files: same files, same bytes.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.unhchr.ch/udhr}"


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def messages(lines):
    out, cur = [], ""
    for line in lines:
        t = " ".join(line.replace("\u200b", "").split())
        if not t:
            continue
        cur = (cur + " " + t) if cur else t
        n = len(cur.encode("utf-8"))
        if n < 40:
            continue
        if n <= 400:
            out.append(cur)
        cur = ""
    return out


def udhr(path):
    root = ET.parse(path).getroot()
    return ["".join(el.itertext()) for el in root.iter() if el.tag in (NS + "para", NS + "listitem")]


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")


def write(path, lang, texts, prefix):
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"{prefix}-{lang}-{i + 1:05d}", "lang": lang, "kind": "text", "text": t},
                               ensure_ascii=False) + "\n")
    print(f"{path}: {len(texts)} messages, {sum(len(t.encode()) for t in texts)} B")


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    udhr_dir, kb, out = argv[1:]
    os.makedirs(os.path.join(out, "heldout"), exist_ok=True)
    os.makedirs(os.path.join(out, "train"), exist_ok=True)
    held = {
        "en": messages(lines(os.path.join(kb, "CKB-ENG/CKB-ENG.ENG_no_tag.txt"))),
        "ckb": messages(lines(os.path.join(kb, "CKB-ENG/CKB-ENG.CKB_no_tag.txt"))),
        "ar": messages(udhr(os.path.join(udhr_dir, "udhr_arb.xml"))),
        "kmr": messages(udhr(os.path.join(udhr_dir, "udhr_kmr.xml"))),
    }
    for lang, texts in held.items():
        write(os.path.join(out, "heldout", f"{lang}.jsonl"), lang, texts[:30], "held")
    train = {
        "ckb": messages(lines(os.path.join(kb, "CKB-KMR/CKB-KMR_ckb_no_tag.txt"))),
        "kmr": messages(lines(os.path.join(kb, "CKB-KMR/CKB-KMR_kmr_no_tag.txt")))
        + messages(lines(os.path.join(kb, "KMR-ENG/KMR-ENG.KMR_no_tag.txt"))),
        "en": messages(lines(os.path.join(kb, "KMR-ENG/KMR-ENG.ENG_no_tag.txt"))),
    }
    for lang, texts in train.items():
        write(os.path.join(out, "train", f"{lang}.jsonl"), lang, texts, "train")
    fed = []
    for lang in sorted(train):
        fed += [(f"train-{lang}-{i + 1:05d}", lang, t) for i, t in enumerate(train[lang][:210])]
    held = [m for m in fed if fnv1a(m[0]) % 5 == 0][:120]
    rest = [m for m in fed if fnv1a(m[0]) % 5 != 0][:500]
    for sub, ms in (("measure", held), ("train", rest)):
        os.makedirs(os.path.join(out, "federation", sub), exist_ok=True)
        with open(os.path.join(out, "federation", sub, "messages.jsonl"), "w", encoding="utf-8") as f:
            for i, lang, t in ms:
                f.write(json.dumps({"id": i, "lang": lang, "kind": "text", "text": t}, ensure_ascii=False) + "\n")
        print(f"federation/{sub}: {len(ms)} messages, {sum(len(m[2].encode()) for m in ms)} B")


if __name__ == "__main__":
    main(sys.argv)
