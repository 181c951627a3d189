#!/usr/bin/python3
"""Drives one of Debian's Python Kafka clients (confluent-kafka-python or kafka-python) for the
compat suite: `produce` sends numbered records with acks=all and reports each delivery; `consume`
joins a consumer group, reads up to --max-records records, commits exactly the offsets after the
records it read, and reports what it read and what the group has committed.

Both print one JSON object on stdout, so the test (not this script) decides what is right. Run it
with /usr/bin/python3: Debian's modules are not on a pyenv or venv python's path.
"""
import argparse
import json
import sys
import time


class ConfluentClient:
    def __init__(self, bootstrap):
        import confluent_kafka

        self.kafka = confluent_kafka
        self.bootstrap = bootstrap

    def produce(self, topic, records, timeout_s):
        producer = self.kafka.Producer({'bootstrap.servers': self.bootstrap, 'acks': 'all', 'linger.ms': 5})
        delivered, errors = [], []

        def on_delivery(error, message):
            if error is not None:
                errors.append(str(error))
            else:
                delivered.append({'partition': message.partition(), 'offset': message.offset(), 'value': message.value().decode()})

        for key, value in records:
            while True:
                try:
                    producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=on_delivery)
                    break
                except BufferError:
                    # The local queue is full: serve delivery reports until there is room.
                    producer.poll(0.1)
            producer.poll(0)
        undelivered = producer.flush(timeout_s)
        return delivered, errors, undelivered

    def consume(self, topic, group, max_records, deadline):
        consumer = self.kafka.Consumer({
            'bootstrap.servers': self.bootstrap,
            'group.id': group,
            'enable.auto.commit': False,
            'auto.offset.reset': 'earliest',
            'session.timeout.ms': 6000,
            'heartbeat.interval.ms': 500,
        })
        records, errors = [], []
        try:
            consumer.subscribe([topic])
            while len(records) < max_records and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None:
                    continue
                if message.error() is not None:
                    errors.append(str(message.error()))
                    continue
                records.append({'partition': message.partition(), 'offset': message.offset(), 'value': message.value().decode()})
            to_commit = next_offsets(records)
            if to_commit:
                consumer.commit(offsets=[self.kafka.TopicPartition(topic, p, o) for p, o in to_commit.items()], asynchronous=False)
            partitions = [self.kafka.TopicPartition(topic, p) for p in partitions_of(consumer.list_topics(topic, timeout=10), topic)]
            committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10) if tp.offset >= 0}
        finally:
            consumer.close()
        return records, committed, errors


class KafkaPythonClient:
    def __init__(self, bootstrap):
        import kafka

        self.kafka = kafka
        self.bootstrap = bootstrap.split(',')

    def produce(self, topic, records, timeout_s):
        producer = self.kafka.KafkaProducer(bootstrap_servers=self.bootstrap, acks='all', linger_ms=5)
        sends = [(value, producer.send(topic, key=key.encode(), value=value.encode())) for key, value in records]
        producer.flush(timeout_s)
        delivered, errors, undelivered = [], [], 0
        for value, future in sends:
            if not future.is_done:
                undelivered += 1
            elif future.failed():
                errors.append(repr(future.exception))
            else:
                metadata = future.value
                delivered.append({'partition': metadata.partition, 'offset': metadata.offset, 'value': value})
        producer.close(timeout=5)
        return delivered, errors, undelivered

    def consume(self, topic, group, max_records, deadline):
        from kafka.structs import OffsetAndMetadata, TopicPartition

        consumer = self.kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset='earliest',
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        records = []
        try:
            consumer.subscribe([topic])
            while len(records) < max_records and time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=500, max_records=max_records - len(records))
                for messages in batch.values():
                    for message in messages:
                        records.append({'partition': message.partition, 'offset': message.offset, 'value': message.value.decode()})
            to_commit = next_offsets(records)
            if to_commit:
                consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, None) for p, o in to_commit.items()})
            committed = {}
            for partition in sorted(consumer.partitions_for_topic(topic) or []):
                offset = consumer.committed(TopicPartition(topic, partition))
                if offset is not None:
                    committed[partition] = offset
        finally:
            consumer.close()
        return records, committed, []


def next_offsets(records):
    """Per partition, the offset after the last record read: what a consumer commits to resume there."""
    offsets = {}
    for record in records:
        offsets[record['partition']] = max(offsets.get(record['partition'], 0), record['offset'] + 1)
    return offsets


def partitions_of(metadata, topic):
    return sorted(metadata.topics[topic].partitions.keys())


MAX_ERRORS_REPORTED = 10
CLIENTS = {'confluent': ConfluentClient, 'kafka-python': KafkaPythonClient}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--client', choices=sorted(CLIENTS), required=True)
    parser.add_argument('--bootstrap', required=True, help='bootstrap.servers, comma-separated')
    parser.add_argument('--topic', required=True)
    parser.add_argument('--timeout', type=float, default=30, help='seconds before giving up')
    commands = parser.add_subparsers(dest='command', required=True)
    produce = commands.add_parser('produce')
    produce.add_argument('--count', type=int, required=True)
    produce.add_argument('--prefix', required=True, help='record i has key key-i and value PREFIX-i')
    consume = commands.add_parser('consume')
    consume.add_argument('--group', required=True)
    consume.add_argument('--max-records', type=int, required=True)
    args = parser.parse_args()

    client = CLIENTS[args.client](args.bootstrap)
    if args.command == 'produce':
        records = [(f'key-{i}', f'{args.prefix}-{i}') for i in range(args.count)]
        delivered, errors, undelivered = client.produce(args.topic, records, args.timeout)
        result = {'delivered': delivered, 'errors': errors, 'undelivered': undelivered}
    else:
        records, committed, errors = client.consume(args.topic, args.group, args.max_records, time.monotonic() + args.timeout)
        result = {'records': records, 'committed': {str(p): o for p, o in committed.items()}, 'errors': errors}
    # A client that fails every record fails it the same way: the first few say why.
    result['errors'] = result['errors'][:MAX_ERRORS_REPORTED]
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
