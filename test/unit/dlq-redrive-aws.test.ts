import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startRedrive } from '../../shared/aws/dead-letters.ts';
import { LabelerError } from '../../shared/errors.ts';

const DLQ_ARN = 'arn:aws:sqs:eu-west-1:123456789012:Labeler-incoming-dlq';

/**
 * SQS's JSON protocol on 127.0.0.1, answering as SQS would: the emulators have no
 * message move tasks, so the AWS redrive path is checked against this stub.
 */
describe('dlq redrive on AWS: an SQS message move task, against a stub SQS API', () => {
  const calls: Array<{ action: string; body: Record<string, unknown> }> = [];
  let server: Server;
  let sqs: SQSClient;
  let refuse = false;

  before(async () => {
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const action = String(req.headers['x-amz-target']).replace('AmazonSQS.', '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      calls.push({ action, body });
      const answer = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'stub' });
        res.end(JSON.stringify(payload));
      };
      if (action === 'GetQueueAttributes') return answer(200, { Attributes: { QueueArn: DLQ_ARN } });
      if (action === 'StartMessageMoveTask') {
        if (refuse) {
          return answer(400, {
            __type: 'com.amazonaws.sqs#UnsupportedOperation',
            message: 'a message move task is already running',
          });
        }
        return answer(200, { TaskHandle: 'task-1' });
      }
      if (action === 'ListMessageMoveTasks') {
        return answer(200, {
          Results: [
            {
              TaskHandle: 'task-1',
              Status: 'RUNNING',
              SourceArn: DLQ_ARN,
              ApproximateNumberOfMessagesMoved: 2,
              ApproximateNumberOfMessagesToMove: 5,
            },
          ],
        });
      }
      return answer(400, { __type: 'com.amazonaws.sqs#InvalidAction', message: action });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    sqs = new SQSClient({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'stub', secretAccessKey: 'stub' },
      maxAttempts: 1,
    });
  });
  after(() => {
    sqs?.destroy();
    server?.close();
  });

  const queue = {
    role: 'incoming' as const,
    dlqUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Labeler-incoming-dlq',
    sourceUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Labeler-incoming',
  };

  it("starts a move task from the DLQ's ARN back to its source queues and reports its status", async () => {
    const report = await startRedrive(sqs, queue);
    assert.deepEqual(report, {
      how: 'message-move-task',
      taskHandle: 'task-1',
      status: 'RUNNING',
      moved: 2,
      toMove: 5,
    });
    const start = calls.find((c) => c.action === 'StartMessageMoveTask');
    // No DestinationArn: SQS returns each message to the queue that dead-lettered it.
    assert.deepEqual(start?.body, { SourceArn: DLQ_ARN });
    assert.deepEqual(
      calls.map((c) => c.action),
      ['GetQueueAttributes', 'StartMessageMoveTask', 'ListMessageMoveTasks'],
    );
  });

  it('turns a refused task into a LabelerError with a code, not an SDK exception', async () => {
    refuse = true;
    await assert.rejects(startRedrive(sqs, queue), (error: unknown) => {
      assert.ok(error instanceof LabelerError, String(error));
      assert.equal(error.code, 'aws/request-failed');
      assert.match(error.message, /StartMessageMoveTask.*already running/);
      return true;
    });
  });
});
