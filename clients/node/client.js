// Calling reviewrank from Node.js with @grpc/grpc-js, the .proto files loaded at run time
// (no generated code). Usage: node client.js HOST:PORT [EVENT_ID]
// Sends one rating, then ranks two candidates reading its own write (min_seq), and
// prints what happened as one JSON line. A bearer token, if the server wants one, is
// taken from REVIEWRANK_TOKEN.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', '..', 'proto');
const definition = protoLoader.loadSync(
  ['reviewrank/v1/feedback.proto', 'reviewrank/v1/ranking.proto'],
  // keepCase: the fields as the .proto names them; longs as strings: seq is a uint64.
  { includeDirs: [PROTO_ROOT], keepCase: true, longs: String, enums: String, defaults: true },
);
const v1 = grpc.loadPackageDefinition(definition).reviewrank.v1;

function call(client, method, request, metadata) {
  const deadline = new Date(Date.now() + 10000);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response));
  });
}

async function main() {
  const [target, eventId = `node-${process.pid}-${Date.now()}`] = process.argv.slice(2);
  if (!target) {
    console.error('usage: node client.js HOST:PORT [EVENT_ID]');
    process.exit(2);
  }
  const credentials = grpc.credentials.createInsecure();
  const feedback = new v1.FeedbackService(target, credentials);
  const ranking = new v1.RankingService(target, credentials);
  const metadata = new grpc.Metadata();
  if (process.env.REVIEWRANK_TOKEN) {
    metadata.set('authorization', `Bearer ${process.env.REVIEWRANK_TOKEN}`);
  }
  try {
    const submitted = await call(feedback, 'SubmitRating', {
      event_id: eventId, product_id: 'node-good', user_id: 'node-user', stars: 5,
    }, metadata);
    const ranked = await call(ranking, 'Rank', {
      candidate_ids: ['node-unknown', 'node-good'],
      candidate_relevances: [1, 1],
      min_seq: submitted.seq, // read your write
    }, metadata);
    console.log(JSON.stringify({
      outcome: submitted.outcome, seq: submitted.seq,
      result_ids: ranked.result_ids, result_scores: ranked.result_scores,
    }));
  } catch (error) {
    console.error(`${grpc.status[error.code]}: ${error.details}`);
    process.exitCode = 1;
  } finally {
    feedback.close();
    ranking.close();
  }
}

main();
