--[[
Every change to a draft, as one atomic compare-and-set with its side effects.

All keys share the hash tag of the key prefix, so on Redis Cluster they live in one
slot and a single script may touch the draft, the product-code reservations, the
owner's index and the expiry schedule together (no CROSSSLOT, nothing half-applied).

KEYS[1] draft         {tag}:draft:<sessionId>     JSON document, expires at expiresAt
KEYS[2] codes         {tag}:codes                 HASH  CODE -> "<sessionId>|<expiresAtMs>"
KEYS[3] code expiry   {tag}:code-expiry           ZSET  CODE scored by expiresAtMs
KEYS[4] owner index   {tag}:owner:<org>:<user>    ZSET  sessionId scored by expiresAtMs
KEYS[5] schedule      {tag}:schedule              ZSET  "soon:<sid>" / "expired:<sid>" by due time
KEYS[6] receipt       {tag}:receipt:<sessionId>   JSON commit receipt, kept 24 h

ARGV[1] operation   ARGV[2] caller user id   ARGV[3] caller organization GUID
ARGV[4] expected version ("" when the client sent none)
ARGV[5] operation arguments (JSON)   ARGV[6] events channel

Returns JSON: {"draft": {...}} on success, {"error": CODE, ...} otherwise.
]]

local op, user_id, org = ARGV[1], ARGV[2], ARGV[3]
local expected_version = tonumber(ARGV[4])
local args = cjson.decode(ARGV[5])
local channel = ARGV[6]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local SOON_MS = 15 * 60 * 1000

local function reply(tbl) return cjson.encode(tbl) end
local function fail(code, extra)
  local r = extra or {}
  r.error = code
  return reply(r)
end

local function publish(event_type, doc, detail)
  redis.call('PUBLISH', channel, cjson.encode({
    type = event_type, sessionId = doc.sessionId, version = doc.version,
    occurredAtMs = now, draft = doc, detail = detail or {}
  }))
end

-- Write the draft back with its absolute expiry: saves never extend a draft's life.
local function save(doc, expire_at_ms)
  doc.version = doc.version + 1
  doc.updatedAtMs = now
  redis.call('SET', KEYS[1], cjson.encode(doc), 'PXAT', expire_at_ms or doc.expiresAtMs)
end

local function release_code(doc)
  local code = doc.productCode
  if code and code ~= cjson.null then
    local holder = redis.call('HGET', KEYS[2], code)
    if holder and string.sub(holder, 1, #doc.sessionId + 1) == doc.sessionId .. '|' then
      redis.call('HDEL', KEYS[2], code)
      redis.call('ZREM', KEYS[3], code)
    end
  end
end

local function unschedule(sid)
  redis.call('ZREM', KEYS[5], 'soon:' .. sid, 'expired:' .. sid)
end

if op == 'create' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return fail('SESSION_EXISTS') end
  -- The owner's index, once rid of expired entries, counts the owner's open drafts.
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  local max_open = tonumber(args.maxOpen)  -- nil when unlimited (JSON null)
  if max_open and redis.call('ZCARD', KEYS[4]) >= max_open then
    return fail('TOO_MANY_DRAFTS', {limit = max_open})
  end
  local expires = now + args.ttlMs
  local doc = {
    sessionId = args.sessionId, version = 0, state = 'INITIATED',
    userId = user_id, organizationGuid = org, privilege = args.privilege,
    createdAtMs = now, updatedAtMs = now, expiresAtMs = expires,
    operationId = args.operationId, errors = {},
  }
  save(doc)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  redis.call('ZADD', KEYS[4], expires, doc.sessionId)
  redis.call('PEXPIREAT', KEYS[4], expires)
  redis.call('ZADD', KEYS[5], expires - SOON_MS, 'soon:' .. doc.sessionId)
  redis.call('ZADD', KEYS[5], expires, 'expired:' .. doc.sessionId)
  return reply({draft = doc})
end

if op == 'sweep' then
  -- Claim due expiry notices; ZREM makes each one fire once across all instances.
  local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, args.limit)
  local fired = {}
  for _, member in ipairs(due) do
    redis.call('ZREM', KEYS[5], member)
    local kind, sid = string.match(member, '^(%a+):(.+)$')
    redis.call('PUBLISH', channel, cjson.encode({
      type = kind == 'soon' and 'EXPIRING_SOON' or 'EXPIRED',
      sessionId = sid, occurredAtMs = now, detail = {}
    }))
    table.insert(fired, member)
  end
  -- Drop reservations whose draft has expired, so no stale one is left behind.
  local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, args.limit)
  for _, code in ipairs(stale) do
    redis.call('HDEL', KEYS[2], code)
    redis.call('ZREM', KEYS[3], code)
  end
  return reply({fired = fired, released = #stale})
end

-- Every other operation acts on an existing draft owned by the caller.
local raw = redis.call('GET', KEYS[1])
if not raw then return fail('SESSION_NOT_FOUND') end
local doc = cjson.decode(raw)
if doc.userId ~= user_id or doc.organizationGuid ~= org then
  return fail('SESSION_NOT_FOUND')
end
if expected_version and expected_version ~= doc.version then
  return fail('STALE_VERSION', {version = doc.version})
end

local state = doc.state
local editable = state == 'INITIATED' or state == 'PRODUCT_ADDED'
  or state == 'TARGET_CONFIGURED' or state == 'FAILED'

if op == 'add_product' or op == 'configure_target' or op == 'cancel' then
  -- Nothing changes a draft while a commit runs, nor after it committed.
  if not editable then return fail('INVALID_STATE', {state = state}) end
end

if op == 'add_product' then
  local code = args.productCode
  local holder = redis.call('HGET', KEYS[2], code)
  if holder then
    local sid, exp = string.match(holder, '^(.+)|(%d+)$')
    if sid ~= doc.sessionId and tonumber(exp) > now then
      return fail('PRODUCT_CODE_TAKEN', {productCode = code})
    end
  end
  if doc.productCode ~= code then release_code(doc) end
  redis.call('HSET', KEYS[2], code, doc.sessionId .. '|' .. doc.expiresAtMs)
  redis.call('ZADD', KEYS[3], doc.expiresAtMs, code)
  local event_type = doc.product and 'PRODUCT_UPDATED' or 'PRODUCT_ADDED'
  doc.product = args.product
  doc.productCode = code
  doc.state = doc.audienceTarget and 'TARGET_CONFIGURED' or 'PRODUCT_ADDED'
  doc.errors = {}
  save(doc)
  publish(event_type, doc)
  return reply({draft = doc})
end

if op == 'configure_target' then
  if not doc.product then return fail('PRODUCT_REQUIRED', {state = state}) end
  doc.audienceTarget = args.audienceTarget
  doc.state = 'TARGET_CONFIGURED'
  doc.errors = {}
  save(doc)
  publish('TARGET_CONFIGURED', doc)
  return reply({draft = doc})
end

if op == 'cancel' then
  release_code(doc)
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], doc.sessionId)
  unschedule(doc.sessionId)
  doc.version = doc.version + 1
  doc.updatedAtMs = now
  publish('CANCELLED', doc)
  return reply({draft = doc})
end

if op == 'begin_commit' then
  local recovering = false
  if state == 'COMMITTING' then
    if doc.commit.leaseUntilMs > now then
      return fail('COMMIT_IN_PROGRESS', {state = state})
    end
    recovering = true  -- the previous committer died: take its lease over
  elseif state == 'COMMITTED' then
    return fail('ALREADY_COMMITTED', {draft = doc})
  elseif not editable or not doc.product then
    return fail('INVALID_STATE', {state = state})
  end
  -- The GUIDs are chosen once and kept: every attempt, and every later commit of
  -- this draft, writes the same records, so Dataverse itself rejects a duplicate.
  local commit = doc.commit or {}
  if not commit.productGuid then
    commit.productGuid = args.productGuid
    commit.targetGuid = args.targetGuid
  end
  commit.leaseOwner = args.leaseOwner
  commit.leaseUntilMs = now + args.leaseMs
  commit.attempt = 0
  commit.startedAtMs = now
  commit.operationId = args.operationId
  commit.recovering = recovering
  doc.commit = commit
  doc.state = 'COMMITTING'
  doc.errors = {}
  -- Keep the draft alive while a commit runs, even past expiresAt.
  save(doc, math.max(doc.expiresAtMs, commit.leaseUntilMs))
  publish('COMMIT_STARTED', doc, {recovering = recovering})
  return reply({draft = doc})
end

-- The remaining operations belong to the process holding the commit lease.
if state ~= 'COMMITTING' or doc.commit.leaseOwner ~= args.leaseOwner then
  return fail('LEASE_LOST', {draft = doc})
end

if op == 'commit_retrying' then
  doc.commit.attempt = args.attempt
  doc.commit.leaseUntilMs = now + args.leaseMs
  save(doc, math.max(doc.expiresAtMs, doc.commit.leaseUntilMs))
  publish('COMMIT_RETRYING', doc, {
    attempt = args.attempt, cause = args.cause, retryAtMs = args.retryAtMs
  })
  return reply({draft = doc})
end

if op == 'commit_succeeded' then
  doc.state = 'COMMITTED'
  doc.result = args.result
  doc.commit.leaseOwner = nil
  doc.committedAtMs = now
  release_code(doc)
  redis.call('ZREM', KEYS[4], doc.sessionId)
  unschedule(doc.sessionId)
  -- The draft's data goes 5 s after commit, by Redis expiry; the receipt stays 24 h.
  save(doc, now + args.cleanupMs)
  redis.call('SET', KEYS[6], cjson.encode({
    sessionId = doc.sessionId, userId = doc.userId, organizationGuid = doc.organizationGuid,
    version = doc.version, createdAtMs = doc.createdAtMs, expiresAtMs = doc.expiresAtMs,
    committedAtMs = now, operationId = doc.commit.operationId, result = args.result,
  }), 'PX', args.receiptTtlMs)
  publish('COMMITTED', doc, args.result)
  return reply({draft = doc})
end

if op == 'commit_failed' then
  doc.state = 'FAILED'
  doc.errors = args.errors
  doc.commit.leaseOwner = nil
  doc.commit.leaseUntilMs = 0
  doc.commit.uncertain = args.uncertain
  if now >= doc.expiresAtMs then
    -- Past its life: the draft goes now, and with it the code reservation.
    release_code(doc)
    redis.call('DEL', KEYS[1])
    doc.version = doc.version + 1
  else
    save(doc)
  end
  publish('FAILED', doc, {errors = args.errors})
  return reply({draft = doc})
end

return fail('UNKNOWN_OPERATION')
