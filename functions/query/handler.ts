import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws/clients.ts';
import { DynamoResultsStore } from '../../shared/aws/dynamo-results-store.ts';
import { readQueryConfig } from '../../shared/config.ts';
import { answerQuery } from '../../shared/labeling/query-api.ts';
import { defaultModelOf } from '../../shared/labeling/stack-models.ts';
import { lambdaLog } from '../../shared/observability.ts';

const config = readQueryConfig(process.env);
// Queries read the stack's default model's results unless they name another.
const { id, version } = defaultModelOf(config.models);
const model = { id, version };
const store = new DynamoResultsStore(createAwsClients({ region: config.region }).db, config.resultsTable);

export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  const response = await answerQuery(
    {
      method: event.requestContext.http.method,
      path: event.rawPath,
      query: event.queryStringParameters ?? {},
      // Decoded by the API's own rules, so a key reads back exactly as the client sent it.
      rawQuery: event.rawQueryString ?? '',
    },
    store,
    { bucket: config.imagesBucket, model, log: lambdaLog },
  );
  return {
    statusCode: response.status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(response.body),
  };
};
