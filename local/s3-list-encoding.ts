import { encodeS3Key } from '../shared/labeling/s3-event.ts';

interface ListRequest {
  method: string;
  query: unknown;
}
/** The one hook of the emulator's HTTP server this needs. */
export interface S3ListHooks {
  addHook(
    name: 'onSend',
    hook: (request: ListRequest, reply: unknown, payload: unknown) => Promise<unknown>,
  ): unknown;
}

/** The elements of a ListObjects answer that S3 URL-encodes when asked to (`encoding-type=url`). */
const ENCODED = /<(Key|Prefix|StartAfter|Delimiter)>([^<]*)<\/\1>/g;

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]+|#\d+);/g, (_, entity: string) =>
    entity.startsWith('#x')
      ? String.fromCodePoint(Number.parseInt(entity.slice(2), 16))
      : entity.startsWith('#')
        ? String.fromCodePoint(Number(entity.slice(1)))
        : (XML_ENTITIES[entity] ?? ''),
  );
}

/**
 * ListObjects with `encoding-type=url`, as S3 answers it: fauxqs ignores the parameter and
 * writes keys into the XML as they are, where a carriage return reads back as a line feed.
 * This hook rewrites such an answer the way S3 writes it: Key, Prefix, StartAfter and
 * Delimiter URL-encoded (a space as `+`, as in event notifications) and
 * `<EncodingType>url</EncodingType>` added. The answer is rebuilt from fauxqs's own text,
 * before any XML parser has seen it, so every character of the stored key survives.
 */
export function emulateListEncoding(server: S3ListHooks): void {
  server.addHook('onSend', async (request, _reply, payload) => {
    if (request.method !== 'GET' || typeof payload !== 'string') return payload;
    const query = (request.query ?? {}) as Record<string, unknown>;
    if (query['encoding-type'] !== 'url' || !/<ListBucketResult[\s>]/.test(payload)) return payload;
    return payload
      .replace(ENCODED, (_, element: string, text: string) => {
        return `<${element}>${encodeS3Key(unescapeXml(text))}</${element}>`;
      })
      .replace(/(<ListBucketResult[^>]*>)/, '$1\n  <EncodingType>url</EncodingType>');
  });
}
