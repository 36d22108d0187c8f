#!/usr/bin/python3
"""kafka_segment.py: writes a Kafka segment file with kafka-python's own
RecordBatch v2 encoder, so that mq's reader is tested against bytes it did
not write itself.

usage: /usr/bin/python3 kafka_segment.py [options] PARTITION_DIR

Writes PARTITION_DIR/NNNNNNNNNNNNNNNNNNNN.log (NNN... is the base offset,
20 digits) holding BATCHES batches of RECORDS records each, at consecutive
offsets from the base offset, and prints the path of the file written.

  --base-offset N      offset of the first record, names the file (default 0)
  --batches N          batches to write (default 1)
  --records N          records per batch (default 1)
  --codec C            none, gzip, lz4, snappy or zstd (default none).  The
                       script fails (exit 3) when the codec's library is
                       missing, and (exit 4) when kafka-python sent a batch
                       uncompressed because compressing did not shrink it.
  --keys               record N gets the key "key-N" (default: null keys)
  --headers            record N gets headers h1="hv-N" and h2=null
  --value FMT          value of each record, with {offset} replaced by its
                       offset (default "value-{offset}")
  --timestamp MS       CreateTime of the first record in epoch ms
                       (default 1763769600000); each later record is 1 ms on
  --index              also write the .index file as Kafka does: an entry
                       (relative last offset of the batch, batch position)
                       whenever more than --index-interval bytes were
                       written since the last entry, the file zero-padded
                       to 10 MiB as Kafka preallocates the active segment's
                       index
  --timeindex          likewise the .timeindex (max timestamp so far,
                       relative offset it belongs to), zero-padded
  --index-interval N   index.interval.bytes (default 4096)
  --no-pad             do not zero-pad the index files

Exit status: 0 written, 2 usage, 3 codec not available, 4 not compressed.
"""
import argparse
import os
import struct
import sys

try:
    from kafka.record.default_records import DefaultRecordBatchBuilder
    import kafka.codec
except ImportError as e:
    sys.stderr.write("kafka_segment.py: python3-kafka is not installed: %s\n" % e)
    sys.exit(3)

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
HAVE = {
    "none": lambda: True,
    "gzip": kafka.codec.has_gzip,
    "snappy": kafka.codec.has_snappy,
    "lz4": kafka.codec.has_lz4,
    "zstd": kafka.codec.has_zstd,
}
INDEX_MAX = 10 * 1024 * 1024


def batch(base, count, codec, ts0, keys, headers, value_fmt):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=CODECS[codec],
                                  is_transactional=False, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 30)
    for i in range(count):
        off = base + i
        key = ("key-%d" % off).encode() if keys else None
        hdrs = [("h1", ("hv-%d" % off).encode()), ("h2", None)] if headers else []
        value = value_fmt.replace("{offset}", str(off)).encode()
        if b.append(i, timestamp=ts0 + off, key=key, value=value, headers=hdrs) is None:
            raise SystemExit("kafka_segment.py: record %d does not fit" % off)
    buf = b.build()
    struct.pack_into(">q", buf, 0, base)
    attrs = struct.unpack_from(">h", buf, 21)[0]
    if (attrs & 7) != CODECS[codec]:
        sys.stderr.write("kafka_segment.py: batch at offset %d was not compressed "
                         "(%s did not shrink it): use more or longer records\n" % (base, codec))
        sys.exit(4)
    return bytes(buf)


def padded(entries, entry_size, pad):
    data = b"".join(entries)
    if pad:
        size = INDEX_MAX - INDEX_MAX % entry_size
        data += b"\0" * (size - len(data))
    return data


def main():
    p = argparse.ArgumentParser(usage="kafka_segment.py [options] PARTITION_DIR",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--base-offset", type=int, default=0)
    p.add_argument("--batches", type=int, default=1)
    p.add_argument("--records", type=int, default=1)
    p.add_argument("--codec", choices=sorted(CODECS), default="none")
    p.add_argument("--keys", action="store_true")
    p.add_argument("--headers", action="store_true")
    p.add_argument("--value", default="value-{offset}")
    p.add_argument("--timestamp", type=int, default=1763769600000)
    p.add_argument("--index", action="store_true")
    p.add_argument("--timeindex", action="store_true")
    p.add_argument("--index-interval", type=int, default=4096)
    p.add_argument("--no-pad", action="store_true")
    a = p.parse_args()
    if not HAVE[a.codec]():
        sys.stderr.write("kafka_segment.py: codec %s is not available to kafka-python\n" % a.codec)
        sys.exit(3)

    base = a.base_offset
    log, index, timeindex = [], [], []
    pos = since = 0
    max_ts = -1
    max_ts_off = base
    off = base
    for _ in range(a.batches):
        data = batch(off, a.records, a.codec, a.timestamp, a.keys, a.headers, a.value)
        last = off + a.records - 1
        if a.timestamp + last > max_ts:
            max_ts, max_ts_off = a.timestamp + last, last
        # LogSegment.append: an entry for this batch when more than the
        # interval was written since the last one
        if since > a.index_interval:
            index.append(struct.pack(">ii", last - base, pos))
            timeindex.append(struct.pack(">qi", max_ts, max_ts_off - base))
            since = 0
        log.append(data)
        pos += len(data)
        since += len(data)
        off = last + 1

    path = os.path.join(a.dir, "%020d.log" % base)
    with open(path, "wb") as f:
        f.write(b"".join(log))
    if a.index:
        with open(os.path.join(a.dir, "%020d.index" % base), "wb") as f:
            f.write(padded(index, 8, not a.no_pad))
    if a.timeindex:
        with open(os.path.join(a.dir, "%020d.timeindex" % base), "wb") as f:
            f.write(padded(timeindex, 12, not a.no_pad))
    print(path)


if __name__ == "__main__":
    main()
