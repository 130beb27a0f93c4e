-- wrk script: every request creates an order with a new, unique orderReference.
-- wrk -s orders.lua URL -- <path> <api key> <reference prefix>
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  prefix = args[3] .. "_" .. tid .. "_"
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = '{"orderReference":"' .. prefix .. counter .. '","amount":"10.5",'
    .. '"currency":"USDT","chainId":"ethereum-sepolia","metadata":{"cart":' .. counter .. '}}'
  return wrk.format(nil, path, nil, body)
end
