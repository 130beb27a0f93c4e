-- wrk script: each request reads one of the orders' payment-page URLs, chosen at random.
-- wrk -s pay_status.lua URL -- <file of order ids> <path template, %s for the id>
local ids = {}

function init(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  template = args[2]
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  return wrk.format("GET", string.format(template, ids[math.random(#ids)]))
end
