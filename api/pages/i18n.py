"""The payer's pages in English and Chinese, chosen from the browser's `Accept-Language`.

Every sentence a payer reads is rendered by the server in one language; the page's script only
changes numbers and shows or hides sentences already there, so it needs no strings of its own.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "zh"]
DEFAULT: Language = "en"

TEXT: dict[Language, dict[str, str]] = {
    "en": {
        "title": "Pay {amount} {currency}",
        "heading": "Pay {amount} {currency}",
        "network_warning": "Send {currency} on {chain} only. A payment on another network or in "
        "another token is not credited to this order.",
        "instruction": "Send {amount} {currency} on {chain} to this address:",
        "address": "Payment address",
        "copy": "Copy address",
        "copied": "Copied",
        "qr_alt": "QR code of the payment address {address}",
        "time_left": "Time left to pay",
        "window_closed": "The time to pay is over; a payment already sent is still counted.",
        "waiting": "Waiting for your payment.",
        "confirming": "Payment seen: {confirmations} of {required} confirmations.",
        "partial": "Received {received} of {amount} {currency}: send {remaining} {currency} more.",
        "paid": "Paid. Thank you!",
        "expired": "This payment has expired.",
        "cancelled": "This payment was cancelled.",
        "contact": "If you paid anyway, contact the merchant and quote the order {reference}.",
        "other_payment": "We received {amount} {currency} on {chain}, which this order does not "
        "take. Contact the merchant and quote the order {reference}.",
        "paid_late": "A payment arrived after this order ended. Contact the merchant and quote "
        "the order {reference}.",
        "continue": "Continue to the merchant",
        "refreshes": "This page refreshes itself every {seconds} seconds.",
        "not_found_title": "Payment not found",
        "not_found": "There is no payment at this link. Check the link you were given.",
        "testnet": "testnet",
        "checkout_amount": "Amount",
        "checkout_enter_amount": "Amount to pay",
        "checkout_choose": "Pay with",
        "checkout_choice": "{currency} on {chain}",
        "checkout_submit": "Continue to payment",
        "checkout_left": "{count} left",
        "checkout_invalid_amount": "Enter an amount greater than 0 in plain digits, with no more "
        "decimals than the token has (for example 10.5).",
        "checkout_invalid_choice": "Choose how you want to pay.",
        "closed_title": "Payment link unavailable",
        "closed_draft": "This payment link is not open yet.",
        "closed_archived": "This payment link is closed.",
        "closed_expired": "This payment link has expired.",
        "closed_sold_out": "Sold out: nothing is left to buy at this link.",
        "busy_title": "Busy",
        "busy": "Busy, try again in {seconds} s.",
        "try_again": "Try again",
        "form_expired": "This form has expired. Open the payment link again.",
    },
    "zh": {
        "title": "支付 {amount} {currency}",
        "heading": "支付 {amount} {currency}",
        "network_warning": "仅限在 {chain} 上发送 {currency}。"
        "其他网络或其他代币的付款不会计入此订单。",
        "instruction": "请在 {chain} 上向以下地址发送 {amount} {currency}：",
        "address": "收款地址",
        "copy": "复制地址",
        "copied": "已复制",
        "qr_alt": "收款地址 {address} 的二维码",
        "time_left": "剩余支付时间",
        "window_closed": "支付时间已结束；已发出的付款仍会计入。",
        "waiting": "等待您的付款。",
        "confirming": "已看到付款：{confirmations} / {required} 个确认。",
        "partial": "已收到 {received} / {amount} {currency}：还需发送 {remaining} {currency}。",
        "paid": "支付成功，谢谢！",
        "expired": "此付款已过期。",
        "cancelled": "此付款已取消。",
        "contact": "如果您仍然付了款，请联系商家并提供订单号 {reference}。",
        "other_payment": "我们在 {chain} 上收到了 {amount} {currency}，此订单不接受该付款。"
        "请联系商家并提供订单号 {reference}。",
        "paid_late": "此订单结束后又收到了一笔付款。请联系商家并提供订单号 {reference}。",
        "continue": "返回商家",
        "refreshes": "此页面每 {seconds} 秒自动刷新。",
        "not_found_title": "未找到付款",
        "not_found": "此链接没有对应的付款。请检查您收到的链接。",
        "testnet": "测试网",
        "checkout_amount": "金额",
        "checkout_enter_amount": "支付金额",
        "checkout_choose": "支付方式",
        "checkout_choice": "{chain} 上的 {currency}",
        "checkout_submit": "继续付款",
        "checkout_left": "剩余 {count} 件",
        "checkout_invalid_amount": "请输入大于 0 的金额，只用数字，"
        "小数位数不超过代币的精度（例如 10.5）。",
        "checkout_invalid_choice": "请选择支付方式。",
        "closed_title": "支付链接不可用",
        "closed_draft": "此支付链接尚未开放。",
        "closed_archived": "此支付链接已关闭。",
        "closed_expired": "此支付链接已过期。",
        "closed_sold_out": "已售罄：此链接已无可购买的数量。",
        "busy_title": "繁忙",
        "busy": "繁忙，请在 {seconds} 秒后重试。",
        "try_again": "重试",
        "form_expired": "此表单已过期。请重新打开支付链接。",
    },
}


def negotiate(accept_language: str | None) -> Language:
    """The best of our languages for an `Accept-Language` header (RFC 9110: q-values,
    `zh-CN` matching `zh`); English when none fits or the header is malformed."""
    best: tuple[float, Language] = (0.0, DEFAULT)
    for item in (accept_language or "").split(",")[:20]:
        tag, _, params = item.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in TEXT:
            continue
        quality = _quality(params)
        if quality > best[0]:  # on equal weights the one listed first stays
            best = (quality, language)
    return best[1]


def _quality(params: str) -> float:
    name, _, value = params.strip().partition("=")
    if name.strip().lower() != "q":
        return 1.0
    try:
        quality = float(value)
    except ValueError:
        return 0.0
    return quality if 0.0 <= quality <= 1.0 else 0.0
