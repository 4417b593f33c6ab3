// Sends identify, track and page through @rudderstack/rudder-sdk-node with its default
// settings (gzip on), then flushes. Usage: node send_rudderstack.js <dataPlaneUrl> <writeKey> <userId>
const Analytics = require("@rudderstack/rudder-sdk-node");

const [dataPlaneUrl, writeKey, userId] = process.argv.slice(2);
const client = new Analytics(writeKey, { dataPlaneUrl });

client.identify({ userId, traits: { plan: "enterprise", email: `${userId}@example.test` } });
client.track({ userId, event: "login", properties: { method: "sso" } });
client.page({ userId, name: "Docs", properties: { path: "/docs" } });
client.flush().then(
  () => process.exit(0),
  (err) => {
    console.error(`flush failed: ${err && err.message}`);
    process.exit(1);
  },
);
