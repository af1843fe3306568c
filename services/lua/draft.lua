--[[
Every change to a draft, as one atomic compare-and-set with its side effects.

All keys share the hash tag of the key prefix, so on Redis Cluster they live in one
slot and a single script may touch the draft, the product-code reservations, the
owner's index and the expiry schedule together (no CROSSSLOT, nothing half-applied).

KEYS[1] draft         {tag}:draft:<sessionId>     JSON document
KEYS[2] codes         {tag}:codes                 HASH  CODE -> "<sessionId>|<heldUntilMs>"
KEYS[3] code expiry   {tag}:code-expiry           ZSET  CODE scored by heldUntilMs
KEYS[4] owner index   {tag}:owner:<org>:<user>    ZSET  sessionId scored by expiresAtMs
KEYS[5] schedule      {tag}:schedule              ZSET  "soon:<sid>" / "expired:<sid>" by due time
KEYS[6] receipt       {tag}:receipt:<sessionId>   JSON commit receipt, kept 24 h
KEYS[7] recovery      {tag}:recovery              ZSET  sessionId scored by when a commit
                                                  that nobody may be running is due to be
                                                  finished by a recoverer

ARGV[1] operation   ARGV[2] caller user id   ARGV[3] caller organization GUID
ARGV[4] expected version ("" when the client sent none)
ARGV[5] operation arguments (JSON)   ARGV[6] events channel

Returns JSON: {"draft": {...}} on success, {"error": CODE, ...} otherwise.

The commit's rules, which every operation below keeps:
- Between the first write sent to Dataverse and the moment its outcome is known, the
  draft's content is frozen (COMMITTING, or FAILED with commit.uncertain): a later
  commit resends exactly what may already be there, under the same GUIDs, so it can
  only confirm it, never write a second product or a different one.
- While the content is frozen the product code stays reserved (held with no expiry)
  and the draft has no Redis expiry: the recovery schedule says who must finish it.
]]

local op, user_id, org = ARGV[1], ARGV[2], ARGV[3]
local expected_version = tonumber(ARGV[4])
local args = cjson.decode(ARGV[5])
local channel = ARGV[6]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local SOON_MS = 15 * 60 * 1000
-- "Held" reservations never expire on their own (year 9999, as milliseconds).
local HELD_MS = 253402300799000

local function reply(tbl) return cjson.encode(tbl) end
local function fail(code, extra)
  local r = extra or {}
  r.error = code
  return reply(r)
end

-- Sharded pub/sub where the server has it (Redis 7): on a cluster the channel then lives on
-- this slot's shard only. services/redis_client.py makes the same choice when subscribing.
local function announce(message)
  local sent = redis.pcall('SPUBLISH', channel, message)
  if type(sent) == 'table' and sent.err then
    redis.call('PUBLISH', channel, message)  -- Redis < 7: no sharded pub/sub
  end
end

local function publish(event_type, doc, detail)
  announce(cjson.encode({
    type = event_type, sessionId = doc.sessionId, version = doc.version,
    occurredAtMs = now, draft = doc, detail = detail or {}
  }))
end

local function frozen(doc)
  return doc.state == 'COMMITTING'
    or (doc.state == 'FAILED' and doc.commit ~= nil and doc.commit.uncertain == true)
end

-- Write the draft back. Saves never extend a draft's life: it expires at expiresAt,
-- unless its content is frozen by a commit, which a recoverer finishes instead.
local function store(doc)
  if frozen(doc) then
    redis.call('SET', KEYS[1], cjson.encode(doc))
  else
    redis.call('SET', KEYS[1], cjson.encode(doc), 'PXAT', doc.expiresAtMs)
  end
end

local function save(doc)
  doc.version = doc.version + 1
  doc.updatedAtMs = now
  store(doc)
end

local function holds_code(doc, holder)
  return holder and string.sub(holder, 1, #doc.sessionId + 1) == doc.sessionId .. '|'
end

local function reserve_code(doc, until_ms)
  -- %.0f: Lua would write a 15-digit number as 2.534e+14
  redis.call('HSET', KEYS[2], doc.productCode, doc.sessionId .. '|' .. string.format('%.0f', until_ms))
  redis.call('ZADD', KEYS[3], until_ms, doc.productCode)
end

local function release_code(doc)
  local code = doc.productCode
  if code and code ~= cjson.null and holds_code(doc, redis.call('HGET', KEYS[2], code)) then
    redis.call('HDEL', KEYS[2], code)
    redis.call('ZREM', KEYS[3], code)
  end
end

-- Make sure this draft holds its code for as long as the commit may run: a commit
-- never writes a code that another draft took meanwhile.
local function hold_code(doc)
  local holder = redis.call('HGET', KEYS[2], doc.productCode)
  if holder and not holds_code(doc, holder) then
    local _, exp = string.match(holder, '^(.+)|(%d+)$')
    if tonumber(exp) > now then return false end
  end
  reserve_code(doc, HELD_MS)
  return true
end

local function unschedule(sid)
  redis.call('ZREM', KEYS[5], 'soon:' .. sid, 'expired:' .. sid)
end

local function delete_draft(doc)
  release_code(doc)
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], doc.sessionId)
  redis.call('ZREM', KEYS[7], doc.sessionId)
  unschedule(doc.sessionId)
  doc.version = doc.version + 1
  doc.updatedAtMs = now
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
    -- A draft frozen by a commit outlives expiresAt until the commit is settled; its
    -- end is told by COMMITTED or FAILED instead. (The draft key shares the slot.)
    local raw = redis.call('GET', args.draftPrefix .. sid)
    local held = raw and frozen(cjson.decode(raw))
    if not (held and kind == 'expired') then
      announce(cjson.encode({
        type = kind == 'soon' and 'EXPIRING_SOON' or 'EXPIRED',
        sessionId = sid, occurredAtMs = now, detail = {}
      }))
      table.insert(fired, member)
    end
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
if op ~= 'take_over' and (doc.userId ~= user_id or doc.organizationGuid ~= org) then
  return fail('SESSION_NOT_FOUND')
end
if expected_version and expected_version ~= doc.version then
  return fail('STALE_VERSION', {version = doc.version})
end

local state = doc.state
local editable = state == 'INITIATED' or state == 'PRODUCT_ADDED'
  or state == 'TARGET_CONFIGURED' or state == 'FAILED'

if op == 'add_product' or op == 'configure_target' or op == 'cancel' then
  -- Nothing changes a draft while a commit runs, nor after it committed, nor while an
  -- earlier write may still be in Dataverse (its content is what a commit must confirm).
  if not editable then return fail('INVALID_STATE', {state = state}) end
  if frozen(doc) then return fail('COMMIT_UNCONFIRMED', {state = state}) end
end

if op == 'add_product' then
  local code = args.productCode
  local holder = redis.call('HGET', KEYS[2], code)
  if holder and not holds_code(doc, holder) then
    local _, exp = string.match(holder, '^(.+)|(%d+)$')
    if tonumber(exp) > now then
      return fail('PRODUCT_CODE_TAKEN', {productCode = code})
    end
  end
  if doc.productCode ~= code then release_code(doc) end
  local event_type = doc.product and 'PRODUCT_UPDATED' or 'PRODUCT_ADDED'
  doc.product = args.product
  doc.productCode = code
  reserve_code(doc, doc.expiresAtMs)
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
  delete_draft(doc)
  publish('CANCELLED', doc)
  return reply({draft = doc})
end

-- Start a commit under a new lease: the caller's own commit (begin_commit), or a
-- recoverer finishing one that nobody runs any more (take_over, claimed once).
local function start_commit(recovering)
  local commit = doc.commit or {}
  -- The GUIDs are derived from the session id and never change: every attempt, and
  -- every later commit of this draft, writes the same records.
  commit.productGuid = commit.productGuid or args.productGuid
  commit.targetGuid = commit.targetGuid or args.targetGuid
  commit.leaseOwner = args.leaseOwner
  commit.leaseUntilMs = now + args.leaseMs
  commit.attempt = 0
  commit.startedAtMs = now
  commit.operationId = args.operationId
  commit.recovering = recovering
  doc.commit = commit
  doc.state = 'COMMITTING'
  doc.errors = {}
  save(doc)
  redis.call('ZADD', KEYS[7], commit.leaseUntilMs, doc.sessionId)
  publish('COMMIT_STARTED', doc, {recovering = recovering})
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
  if not hold_code(doc) then return fail('PRODUCT_CODE_TAKEN', {productCode = doc.productCode}) end
  return start_commit(recovering)
end

if op == 'take_over' then
  -- Only a commit that is due: a lease that ran out, or an unconfirmed failure whose
  -- draft reached expiresAt with nobody left to commit it again.
  local due = redis.call('ZSCORE', KEYS[7], doc.sessionId)
  if not due or tonumber(due) > now then return fail('NOT_DUE', {state = state}) end
  local stale = state == 'COMMITTING' and doc.commit.leaseUntilMs <= now
  local abandoned = state == 'FAILED' and frozen(doc)
  if not (stale or abandoned) then
    redis.call('ZREM', KEYS[7], doc.sessionId)
    return fail('NOT_DUE', {state = state})
  end
  hold_code(doc)
  return start_commit(true)
end

-- The remaining operations belong to the process holding the commit lease.
if state ~= 'COMMITTING' or doc.commit.leaseOwner ~= args.leaseOwner then
  return fail('LEASE_LOST', {draft = doc})
end

local function renew()
  doc.commit.leaseUntilMs = now + args.leaseMs
  redis.call('ZADD', KEYS[7], doc.commit.leaseUntilMs, doc.sessionId)
end

if op == 'heartbeat' then
  -- Bookkeeping only: no new version, no event.
  renew()
  store(doc)
  return reply({draft = doc})
end

if op == 'fence' then
  -- Right before a write is sent: still ours, the code still held, and from now on the
  -- write may be in Dataverse whatever happens to this process.
  if not hold_code(doc) then return fail('PRODUCT_CODE_TAKEN', {productCode = doc.productCode}) end
  renew()
  doc.commit.uncertain = true
  doc.commit.lastWriteAtMs = now
  store(doc)
  return reply({draft = doc})
end

if op == 'commit_retrying' then
  doc.commit.attempt = args.attempt
  renew()
  save(doc)
  publish('COMMIT_RETRYING', doc, {
    attempt = args.attempt, cause = args.cause, retryAtMs = args.retryAtMs
  })
  return reply({draft = doc})
end

if op == 'commit_succeeded' then
  doc.state = 'COMMITTED'
  doc.result = args.result
  doc.commit.leaseOwner = nil
  doc.commit.uncertain = false
  doc.committedAtMs = now
  release_code(doc)  -- Dataverse holds the code now; the uniqueness check sees it there
  redis.call('ZREM', KEYS[4], doc.sessionId)
  redis.call('ZREM', KEYS[7], doc.sessionId)
  unschedule(doc.sessionId)
  -- The draft's data goes 5 s after commit, by Redis expiry; the receipt stays 24 h.
  doc.version = doc.version + 1
  doc.updatedAtMs = now
  redis.call('SET', KEYS[1], cjson.encode(doc), 'PX', args.cleanupMs)
  redis.call('SET', KEYS[6], cjson.encode({
    sessionId = doc.sessionId, userId = doc.userId, organizationGuid = doc.organizationGuid,
    version = doc.version, createdAtMs = doc.createdAtMs, expiresAtMs = doc.expiresAtMs,
    committedAtMs = now, operationId = doc.commit.operationId, result = args.result,
    product = doc.product, audienceTarget = doc.audienceTarget,
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
  if args.uncertain then
    -- The write may be in Dataverse: keep the draft, its content and its code until a
    -- commit confirms it, by the admin or, once the draft's time is up, by a recoverer.
    save(doc)
    redis.call('ZADD', KEYS[7], math.max(doc.expiresAtMs, now + args.recoverAfterMs),
      doc.sessionId)
    publish('FAILED', doc, {errors = args.errors, unconfirmed = true})
  elseif now >= doc.expiresAtMs then
    -- Past its life, and nothing of it can be in Dataverse: the draft goes now.
    delete_draft(doc)
    publish('FAILED', doc, {errors = args.errors})
  else
    redis.call('ZREM', KEYS[7], doc.sessionId)
    reserve_code(doc, doc.expiresAtMs)
    save(doc)
    publish('FAILED', doc, {errors = args.errors})
  end
  return reply({draft = doc})
end

return fail('UNKNOWN_OPERATION')
