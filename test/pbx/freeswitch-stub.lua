--[[
A stand-in for FreeSWITCH around a mod_lua script, for test/pbx/scripts.test.ts:

  lua5.4 freeswitch-stub.lua <script.lua> [argv…]

STUB_VARS names a file of lines `session <name> <value>` (the channel's
variables; with any of them a `session` object exists, as in the dialplan) and
`global <name> <value>` (vars.xml). What the script does is printed, one line each:
  SET <name>=<value> · EXEC <app> <data> · HANGUP <cause> · LOG <level> <text> · CURL <args>
freeswitch.API():execute('curl', …) follows mod_curl's `curl` API: arguments
split on spaces (single quotes group), the post data url-decoded, the answer
with `json` as {"status_code": "...", "body": "..."}; the request is made by
the curl program. `uuid_getvar <uuid> <name>` reads the session variables.
]]

local script = arg[1]
argv = { [0] = script }
for i = 2, #arg do argv[i - 1] = arg[i] end

local vars, globals, has_session = {}, {}, false
local varfile = os.getenv('STUB_VARS')
if varfile then
  for line in io.lines(varfile) do
    local scope, name, value = line:match('^(%S+) (%S+) ?(.*)$')
    if scope == 'session' then vars[name] = value; has_session = true
    elseif scope == 'global' then globals[name] = value end
  end
end

local function out(s) io.stdout:write(s .. '\n') end

local function split(s)
  local args, cur, quoted, had = {}, {}, false, false
  for c in s:gmatch('.') do
    if c == "'" then quoted = not quoted; had = true
    elseif c == ' ' and not quoted then
      if #cur > 0 or had then args[#args + 1] = table.concat(cur) end
      cur, had = {}, false
    else cur[#cur + 1] = c end
  end
  if #cur > 0 or had then args[#args + 1] = table.concat(cur) end
  return args
end

local function urldecode(s)
  return (s:gsub('%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end))
end

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function jsonstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return string.format('\\u%04x', c:byte())
  end) .. '"'
end

local function curl(cmd)
  out('CURL ' .. cmd)
  local a = split(cmd)
  local url, headers, post, ctype, timeout, ctimeout, json = a[1], {}, nil, nil, nil, nil, false
  local i = 2
  while i <= #a do
    local w = a[i]
    if w == 'json' then json = true
    elseif w == 'append_headers' then i = i + 1; headers[#headers + 1] = a[i]
    elseif w == 'content-type' then i = i + 1; ctype = a[i]
    elseif w == 'timeout' then i = i + 1; timeout = a[i]
    elseif w == 'connect-timeout' then i = i + 1; ctimeout = a[i]
    elseif w == 'post' then i = i + 1; post = urldecode(a[i] or '') end
    i = i + 1
  end
  local bodyfile, datafile = os.tmpname(), os.tmpname()
  local c = { 'curl -s -o', shq(bodyfile), "-w '%{http_code}'" }
  if timeout then c[#c + 1] = '--max-time ' .. shq(timeout) end
  if ctimeout then c[#c + 1] = '--connect-timeout ' .. shq(ctimeout) end
  if ctype then c[#c + 1] = '-H ' .. shq('Content-Type: ' .. ctype) end
  for _, h in ipairs(headers) do c[#c + 1] = '-H ' .. shq(h) end
  if post then
    local f = io.open(datafile, 'w'); f:write(post); f:close()
    c[#c + 1] = '-X POST --data-binary @' .. shq(datafile)
  end
  c[#c + 1] = shq(url)
  local p = io.popen(table.concat(c, ' '))
  local code = p:read('*a'); p:close()
  local f = io.open(bodyfile); local body = f and f:read('*a') or ''; if f then f:close() end
  os.remove(bodyfile); os.remove(datafile)
  code = tonumber(code) or 0
  if json then return '{"status_code":"' .. code .. '","body":' .. jsonstr(body) .. '}' end
  return body
end

freeswitch = {
  consoleLog = function(level, msg) out('LOG ' .. level .. ' ' .. msg:gsub('\n$', '')) end,
  getGlobalVariable = function(name) return globals[name] end,
  API = function()
    return {
      execute = function(_, name, args)
        if name == 'curl' then return curl(args) end
        if name == 'uuid_getvar' then
          local _, var = args:match('^(%S+) (%S+)$')
          return vars[var] or '_undef_'
        end
        error('stub: no API ' .. name)
      end,
    }
  end,
}

if has_session then
  session = {
    get_uuid = function() return vars.uuid end,
    getVariable = function(_, name) return vars[name] end,
    setVariable = function(_, name, value) vars[name] = value; out('SET ' .. name .. '=' .. tostring(value)) end,
    execute = function(_, app, data) out('EXEC ' .. app .. ' ' .. (data or '')) end,
    hangup = function(_, cause) out('HANGUP ' .. (cause or 'NORMAL_CLEARING')) end,
    ready = function() return true end,
  }
end

dofile(script)
