--[[
Forfait for FreeSWITCH: a mod_lua script (Lua 5.2 to 5.4, nothing but what
FreeSWITCH has: HTTP goes through mod_curl's `curl` API).

Put it in scripts/ (e.g. /usr/share/freeswitch/scripts/forfait.lua), load
mod_curl and mod_lua, set the settings below in vars.xml, and see
dialplan.xml beside it:

  <action application="lua" data="forfait.lua"/>            authorize (dialplan)
  <action application="bridge" data="sofia/gateway/trunk/${forfait_callee}"/>

Authorize: POST /v1/authorize {identifiant: ${accountcode} (or the caller id
number), callee: ${destination_number} (*1 … *10: the speed-dial key),
callId: the channel's uuid (the uuid of mod_cdr_csv, so a CDR file sent later
is a duplicate)}.
  deny        → respond "403 <REASON>" with an X-Forfait-Reason header, hang up;
  unreachable → respond "503 Forfait unreachable" (or, with
                forfait_unreachable=free, let forfait_free_numbers through);
  allow       → forfait_max, forfait_reservation, forfait_callee are set;
                execute_on_answer runs `sched_hangup +<maxSeconds>` (counted
                from the answer), and api_hangup_hook runs this script again
                with "end" when the channel hangs up, which posts
                /v1/calls/{reservationId}/end {durationSeconds: ${billmsec}
                rounded half up, disposition from ${hangup_cause}}.
An end no Forfait takes is appended to forfait_spool and sent again by the next
end that gets through.

Settings (global variables, vars.xml: <X-PRE-PROCESS cmd="set" data="forfait_url=…"/>):
  forfait_url, forfait_url_2 (failover, optional), forfait_key (pbx key),
  forfait_timeout (seconds, default 2), forfait_unreachable (refuse | free),
  forfait_free_numbers (default 112,15,17,18,114,115,119),
  forfait_spool (default /var/spool/freeswitch/forfait-ends.ndjson)
]]

local DEFAULTS = {
  forfait_url = 'http://127.0.0.1:8080',
  forfait_url_2 = '',
  forfait_key = '',
  forfait_timeout = '2',
  forfait_unreachable = 'refuse',
  forfait_free_numbers = '112,15,17,18,114,115,119',
  forfait_free_max_seconds = '14400',
  forfait_spool = '/var/spool/freeswitch/forfait-ends.ndjson',
}

local function setting(name)
  local v = freeswitch.getGlobalVariable(name)
  if v == nil or v == '' then return DEFAULTS[name] end
  return v
end

local function log(level, msg)
  freeswitch.consoleLog(level, 'forfait: ' .. msg .. '\n')
end

-- JSON: what Forfait sends and answers (objects, strings, numbers, booleans, null)
local function encode(t, order)
  local parts = {}
  for _, k in ipairs(order) do
    local v = t[k]
    if v ~= nil then
      local s
      if type(v) == 'number' then
        s = string.format('%d', v)
      else
        s = '"' .. tostring(v):gsub('[%c"\\]', function(c)
          if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
          return string.format('\\u%04x', c:byte())
        end) .. '"'
      end
      parts[#parts + 1] = '"' .. k .. '":' .. s
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local decode_value
local function skip(s, i) return (s:find('[^ \t\r\n]', i)) or (#s + 1) end
local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == '' then error('unterminated string') end
    if c == '"' then return table.concat(out), j + 1 end
    if c == '\\' then
      local e = s:sub(j + 1, j + 1)
      local map = { b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }
      if e == 'u' then
        local code = tonumber(s:sub(j + 2, j + 5), 16)
        if code < 128 then out[#out + 1] = string.char(code)
        elseif code < 2048 then out[#out + 1] = string.char(192 + math.floor(code / 64), 128 + code % 64)
        else out[#out + 1] = string.char(224 + math.floor(code / 4096), 128 + math.floor(code / 64) % 64, 128 + code % 64) end
        j = j + 6
      else
        out[#out + 1] = map[e] or e
        j = j + 2
      end
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
end
-- the items of an object or array up to `close`, each read by `item(i)`
local function decode_items(s, i, close, item)
  i = skip(s, i)
  if s:sub(i, i) == close then return i + 1 end
  while true do
    i = skip(s, item(i))
    local d = s:sub(i, i)
    if d == close then return i + 1 end
    if d ~= ',' then error('expected , or ' .. close) end
    i = i + 1
  end
end
decode_value = function(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == '{' then
    local t = {}
    i = decode_items(s, i + 1, '}', function(j)
      local k
      k, j = decode_string(s, skip(s, j))
      j = skip(s, j)
      if s:sub(j, j) ~= ':' then error('expected :') end
      t[k], j = decode_value(s, j + 1)
      return j
    end)
    return t, i
  elseif c == '[' then
    local t = {}
    i = decode_items(s, i + 1, ']', function(j)
      t[#t + 1], j = decode_value(s, j)
      return j
    end)
    return t, i
  elseif c == '"' then
    return decode_string(s, i)
  elseif s:sub(i, i + 3) == 'true' then return true, i + 4
  elseif s:sub(i, i + 4) == 'false' then return false, i + 5
  elseif s:sub(i, i + 3) == 'null' then return nil, i + 4
  end
  local num = s:match('^-?%d+%.?%d*[eE]?[-+]?%d*', i)
  if not num or num == '' then error('unexpected ' .. c) end
  return tonumber(num), i + #num
end
local function decode(s)
  local ok, v = pcall(decode_value, s or '', 1)
  if ok then return v end
  return nil
end

local function urlencode(s)
  return (s:gsub('[^%w%-_%.~]', function(c) return string.format('%%%02X', c:byte()) end))
end

-- POST through mod_curl, to forfait_url then forfait_url_2. Returns the HTTP
-- status (0: no Forfait answered, or 5xx) and the decoded answer.
local function post(path, body)
  local api = freeswitch.API()
  local t = setting('forfait_timeout')
  for _, base in ipairs({ setting('forfait_url'), setting('forfait_url_2') }) do
    if base and base ~= '' then
      -- mod_curl splits its arguments on spaces (quotes group them) and
      -- url-decodes the post data
      local args = base:gsub('/+$', '') .. path .. ' json connect-timeout ' .. t .. ' timeout ' .. t ..
        " content-type application/json append_headers 'Authorization: Bearer " .. setting('forfait_key') .. "'" ..
        ' post ' .. urlencode(body)
      local out = decode(api:execute('curl', args))
      local status = out and tonumber(out.status_code) or 0
      if status > 0 and status < 500 then return status, decode(out.body) end
      log('WARNING', 'POST ' .. base .. path .. ' failed (' .. tostring(status) .. ')')
    end
  end
  return 0, nil
end

local function is_free(number)
  for n in setting('forfait_free_numbers'):gmatch('[^,%s]+') do
    if n == number then return true end
  end
  return false
end

local function refuse(code, reason)
  session:setVariable('forfait_reason', reason)
  session:setVariable('sip_rh_X-Forfait-Reason', reason)
  session:execute('respond', code .. ' ' .. reason)
  session:hangup(code == 503 and 'NORMAL_TEMPORARY_FAILURE' or 'CALL_REJECTED')
end

local function authorize()
  local uuid = session:get_uuid()
  local identifiant = session:getVariable('accountcode')
  if identifiant == nil or identifiant == '' then identifiant = session:getVariable('caller_id_number') end
  local dialled = session:getVariable('destination_number') or ''
  local body = { identifiant = identifiant, callId = uuid }
  local key = dialled:match('^%*(%d%d?)$')
  if key and tonumber(key) >= 1 and tonumber(key) <= 10 then
    body.key = tonumber(key)
  else
    body.callee = dialled
  end
  local status, answer = post('/v1/authorize', encode(body, { 'identifiant', 'callee', 'key', 'callId' }))

  if status == 409 then return refuse(403, 'CALL_ID_REUSED') end
  if status ~= 200 or type(answer) ~= 'table' then
    -- no Forfait, or it refused the request (400: identifiant or number; 401/403: the key)
    if status ~= 0 then log('ERR', '/v1/authorize answered ' .. status) end
    if setting('forfait_unreachable') == 'free' and is_free(dialled) then
      log('WARNING', 'Forfait unreachable, ' .. dialled .. ' let through')
      session:setVariable('forfait_max', setting('forfait_free_max_seconds'))
      session:setVariable('forfait_callee', dialled)
      session:setVariable('execute_on_answer_forfait', 'sched_hangup +' .. setting('forfait_free_max_seconds') .. ' allotted_timeout')
      return
    end
    return refuse(503, 'Forfait unreachable')
  end
  local max = tonumber(answer.maxSeconds) or 0
  if answer.decision ~= 'allow' or max <= 0 then
    log('INFO', identifiant .. ' -> ' .. dialled .. ' denied: ' .. tostring(answer.reason))
    return refuse(403, answer.reason or 'DENIED')
  end
  session:setVariable('forfait_max', tostring(max))
  session:setVariable('forfait_callee', answer.callee or dialled)
  -- counted from the answer: the call is cut maxSeconds after it
  session:setVariable('execute_on_answer_forfait', 'sched_hangup +' .. max .. ' allotted_timeout')
  if answer.reservationId then
    session:setVariable('forfait_reservation', answer.reservationId)
    -- expanded when the hook runs, after hangup_cause and billmsec are set
    session:setVariable('api_hangup_hook', 'lua forfait.lua end ' .. uuid .. ' ' .. answer.reservationId .. ' ${billmsec} ${hangup_cause}')
  end
  log('INFO', identifiant .. ' -> ' .. dialled .. ' allowed for ' .. max .. ' s')
end

local function spool(line)
  local f = io.open(setting('forfait_spool'), 'a')
  if not f then return log('ERR', 'cannot write ' .. setting('forfait_spool') .. ': lost ' .. line) end
  f:write(line .. '\n')
  f:close()
end

local function replay()
  local file = setting('forfait_spool')
  local f = io.open(file, 'r')
  if not f then return end
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  local left = {}
  for _, line in ipairs(lines) do
    local item = decode(line)
    if #left == 0 and item and item.path then
      local status = post(item.path, item.body)
      if status == 0 then left[#left + 1] = line end
    elseif item then
      left[#left + 1] = line
    end
  end
  f = io.open(file, 'w')
  if f then
    for _, line in ipairs(left) do f:write(line .. '\n') end
    f:close()
  end
end

local NO_ANSWER = { NO_ANSWER = true, NO_USER_RESPONSE = true, ORIGINATOR_CANCEL = true }

local function report_end(uuid, reservation, billmsec, cause)
  local api = freeswitch.API()
  -- unexpanded (an older FreeSWITCH): ask the channel, still there while its hook runs
  if billmsec == nil or billmsec:find('^%$') then billmsec = api:execute('uuid_getvar', uuid .. ' billmsec') end
  if cause == nil or cause:find('^%$') then cause = api:execute('uuid_getvar', uuid .. ' hangup_cause') end
  local ms = tonumber(billmsec) or 0
  local duration = math.floor((ms + 500) / 1000)
  local disposition
  if ms > 0 then disposition = 'answered'
  elseif NO_ANSWER[cause] then disposition = 'no_answer'
  elseif cause == 'USER_BUSY' then disposition = 'busy'
  else disposition = 'failed' end
  local path = '/v1/calls/' .. reservation .. '/end'
  local body = encode({ durationSeconds = duration, disposition = disposition }, { 'durationSeconds', 'disposition' })
  local status = post(path, body)
  if status == 0 then
    log('ERR', 'end of ' .. reservation .. ' not delivered, spooled')
    return spool(encode({ path = path, body = body }, { 'path', 'body' }))
  end
  if status ~= 200 then log('ERR', 'end of ' .. reservation .. ' refused (' .. status .. ')') end
  log('INFO', 'reservation ' .. reservation .. ' ended: ' .. duration .. ' s ' .. disposition)
  replay()
end

if argv and argv[1] == 'end' then
  report_end(argv[2], argv[3], argv[4], argv[5])
else
  authorize()
end
