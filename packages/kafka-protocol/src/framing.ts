// Cuts a TCP byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes.
// Chunks may end anywhere, inside the size or the content, and one chunk may hold many frames.
import { FrameSizeError } from './errors.js';

/** Kafka's default for `socket.request.max.bytes`. */
export const DEFAULT_MAX_FRAME_BYTES = 104_857_600;

const SIZE_PREFIX_BYTES = 4;

export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** The size of the frame whose content is awaited, or -1 while awaiting a size prefix. */
  private frameSize = -1;
  /** Bytes of the stream consumed so far, for the offset of a bad size prefix. */
  private streamOffset = 0;
  private failure: FrameSizeError | undefined;

  /**
   * `maxFrameBytes` bounds a frame's content (Kafka's `socket.request.max.bytes`): a larger size
   * prefix is rejected as soon as it is read, before any of its content is buffered.
   */
  constructor(readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > 0x7fffffff) throw new RangeError(`maxFrameBytes ${maxFrameBytes} is not between 0 and 2^31-1`);
  }

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  /**
   * Takes the next bytes of the stream and returns the frames they complete, each without its size
   * prefix. A frame is a view of the received chunk when it lies within one, so it must not be
   * written to. After a FrameSizeError the stream has lost its framing for good: every later call
   * throws the same error, and the connection should be closed.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.failure !== undefined) throw this.failure;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.bufferedBytes += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.frameSize < 0) {
        if (this.bufferedBytes < SIZE_PREFIX_BYTES) break;
        const size = this.take(SIZE_PREFIX_BYTES).readInt32BE(0);
        if (size < 0 || size > this.maxFrameBytes) {
          this.failure = new FrameSizeError(size, this.maxFrameBytes, this.streamOffset - SIZE_PREFIX_BYTES);
          throw this.failure;
        }
        this.frameSize = size;
      }
      if (this.bufferedBytes < this.frameSize) break;
      frames.push(this.take(this.frameSize));
      this.frameSize = -1;
    }
    return frames;
  }

  /** Removes the next `length` buffered bytes, copying only when they span chunks. */
  private take(length: number): Buffer {
    this.bufferedBytes -= length;
    this.streamOffset += length;
    const first = this.chunks[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const taken = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, length - filled);
      chunk.copy(taken, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return taken;
  }
}
