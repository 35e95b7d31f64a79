/**
 * Request decoders that never make grpc-js return INTERNAL. grpc-js returns
 * INTERNAL ("Error deserializing request") when a decoder throws, before any
 * handler runs, so each decoder here returns a marker instead, and the
 * handler adapter returns INVALID_ARGUMENT once authentication has passed.
 * Strings must be valid UTF-8, as proto3 requires.
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import type { ServiceDefinition } from '@grpc/grpc-js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8Strictly(bytes: Uint8Array): string {
  return strictUtf8.decode(bytes);
}

/** Stands in for a request message whose bytes did not decode. */
export class UndecodableRequest {
  constructor(readonly reason: string) {}
}

interface Decodable<T> {
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

/** Decodes with strict UTF-8, returning UndecodableRequest instead of throwing. */
export function decodeOrMark<T>(message: Decodable<T>, bytes: Uint8Array): T | UndecodableRequest {
  try {
    return message.decode(new BinaryReader(bytes, decodeUtf8Strictly));
  } catch (error) {
    // TODO: name the field that failed to decode; the reader reports only a
    // byte position, and mapping it to a field needs the message's schema.
    const detail = error instanceof TypeError && /encoded data/i.test(error.message) ? 'a string field is not valid UTF-8' : (error as Error).message;
    return new UndecodableRequest(detail);
  }
}

/**
 * Returns a copy of a ts-proto service definition whose request decoders
 * use decodeOrMark. `messages` gives the request type of each method.
 */
export function withStrictDecoding<S extends ServiceDefinition>(
  service: S,
  messages: { [K in keyof S]: Decodable<unknown> },
): S {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    const message = messages[name as keyof S];
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => decodeOrMark(message, bytes),
    };
  }
  return wrapped as S;
}
