import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseS3EventBody, tryDecodeS3Key } from '../../shared/labeling/s3-event.ts';
import { s3EventBody } from '../helpers/events.ts';

/** An S3 event body whose object key is written as given, without encoding it. */
function bodyWithRawKeys(...rawKeys: string[]): string {
  const body = JSON.parse(s3EventBody({ bucket: 'b', key: 'placeholder', eTag: 'e', size: 1 }));
  const [template] = body.Records;
  body.Records = rawKeys.map((key) => ({
    ...template,
    s3: { ...template.s3, object: { ...template.s3.object, key } },
  }));
  return JSON.stringify(body);
}

describe('S3 event keys that cannot be decoded', () => {
  it('makes the message invalid with a reason naming the key, instead of throwing URIError', () => {
    const parsed = parseS3EventBody(bodyWithRawKeys('images/%E0%A4%A.png'));
    assert.equal(parsed.kind, 'invalid');
    assert.match(parsed.kind === 'invalid' ? parsed.reason : '', /images\/%E0%A4%A\.png.*percent-encoding/);
  });

  it('refuses the whole message when any one of its keys is broken (it goes to the DLQ as it came)', () => {
    const parsed = parseS3EventBody(bodyWithRawKeys('images/ok.png', 'images/%ZZ.png'));
    assert.equal(parsed.kind, 'invalid');
  });

  it('still decodes good keys, including a lone % written as %25', () => {
    const parsed = parseS3EventBody(bodyWithRawKeys('images/100%25+sure.png'));
    assert.equal(parsed.kind === 'objects' && parsed.objects[0]?.key, 'images/100% sure.png');
    assert.equal(tryDecodeS3Key('%E0%A4%A'), undefined);
    assert.equal(tryDecodeS3Key('%C3%BC'), 'ü');
  });
});
