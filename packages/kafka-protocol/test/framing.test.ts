import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameSizeError, KafkaProtocolError } from '../src/index.js';

function framed(content: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(content.length);
  return Buffer.concat([size, content]);
}

const contents = [Buffer.from('first frame'), Buffer.alloc(0), Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), Buffer.from('x')];
const stream = Buffer.concat(contents.map(framed));

/** Feeds `chunks` to a fresh decoder and returns every frame it yields, as hex for readable diffs. */
function decodeAll(chunks: Buffer[], decoder = new FrameDecoder()): string[] {
  return chunks.flatMap((chunk) => decoder.push(chunk)).map((frame) => frame.toString('hex'));
}

const expected = contents.map((content) => content.toString('hex'));

describe('FrameDecoder', () => {
  it('yields every frame of a chunk that holds several', () => {
    expect(decodeAll([stream])).toEqual(expected);
  });

  it('yields the same frames however the stream is split in two, at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(decodeAll([stream.subarray(0, cut), stream.subarray(cut)]), `cut at ${cut}`).toEqual(expected);
    }
  });

  it('yields the same frames fed one byte at a time, and holds nothing after the last', () => {
    const decoder = new FrameDecoder();
    const bytes = Array.from(stream, (byte) => Buffer.from([byte]));
    expect(decodeAll(bytes, decoder)).toEqual(expected);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('yields the same frames for any split into many chunks', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        const chunks = points.slice(1).map((end, i) => stream.subarray(points[i], end));
        expect(decodeAll(chunks)).toEqual(expected);
      }),
    );
  });

  it('keeps a partial frame until it completes', () => {
    const decoder = new FrameDecoder();
    const frame = framed(Buffer.from('abcdef'));
    expect(decoder.push(frame.subarray(0, 7))).toEqual([]);
    expect(decoder.pendingBytes).toBe(3);
    expect(decoder.push(frame.subarray(7)).map(String)).toEqual(['abcdef']);
  });

  it('rejects a size prefix above the limit as soon as the prefix arrives, before buffering content', () => {
    const decoder = new FrameDecoder(100);
    decoder.push(framed(Buffer.alloc(100))); // exactly the limit is fine
    const prefix = Buffer.alloc(4);
    prefix.writeInt32BE(101);
    let caught: unknown;
    try {
      decoder.push(prefix);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FrameSizeError);
    expect(caught).toBeInstanceOf(KafkaProtocolError);
    expect((caught as FrameSizeError).size).toBe(101);
    expect((caught as FrameSizeError).offset).toBe(104); // the prefix's place in the stream
    expect(decoder.pendingBytes).toBe(0);
    // The stream has lost its framing: nothing after this is trusted.
    expect(() => decoder.push(framed(Buffer.from('ok')))).toThrow(FrameSizeError);
  });

  it('rejects the default limit plus one, and a negative size', () => {
    const tooLarge = Buffer.alloc(4);
    tooLarge.writeInt32BE(DEFAULT_MAX_FRAME_BYTES + 1);
    expect(() => new FrameDecoder().push(tooLarge)).toThrow(/104857601 is larger than the limit of 104857600/);
    expect(() => new FrameDecoder().push(Buffer.from('ffffffff', 'hex'))).toThrow(/frame size -1 is negative/);
  });

  it('refuses a limit that no int32 size could respect', () => {
    expect(() => new FrameDecoder(-1)).toThrow(RangeError);
    expect(() => new FrameDecoder(2 ** 31)).toThrow(RangeError);
  });
});
