"""The simulated exchange's market list: codes, names, start prices, tick sizes, activity.

About 200 markets over the KRW, BTC and USDT quote currencies, with real coin
codes and their Korean and English names. Start prices are plausible KRW prices
scaled by a seeded factor, so two seeds give two different but equally
realistic exchanges. Tick sizes follow Upbit's published price-band tables
(KRW table of 2025-07-31, USDT table of 2024-08-19, a single 1-satoshi tick on
BTC markets). Order-book aggregation levels exist on KRW markets only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "CAUTION_KEYS",
    "QUOTES",
    "MarketInfo",
    "build_catalogue",
    "decimals_of",
    "format_decimal",
    "round_to_tick",
    "supported_levels",
    "tick_band",
    "tick_size",
]

QUOTES: tuple[str, ...] = ("KRW", "BTC", "USDT")

# (price floor, tick) from the highest band down; the last band covers everything below.
_KRW_TICKS: tuple[tuple[float, Decimal], ...] = (
    (1_000_000, Decimal("1000")),
    (500_000, Decimal("500")),
    (100_000, Decimal("100")),
    (50_000, Decimal("50")),
    (10_000, Decimal("10")),
    (5_000, Decimal("5")),
    (100, Decimal("1")),
    (10, Decimal("0.1")),
    (1, Decimal("0.01")),
    (0.1, Decimal("0.001")),
    (0.01, Decimal("0.0001")),
    (0.001, Decimal("0.00001")),
    (0.0001, Decimal("0.000001")),
    (0, Decimal("0.0000001")),
)
_USDT_TICKS: tuple[tuple[float, Decimal], ...] = (
    (10, Decimal("0.01")),
    (1, Decimal("0.001")),
    (0.1, Decimal("0.0001")),
    (0.01, Decimal("0.00001")),
    (0.001, Decimal("0.000001")),
    (0.0001, Decimal("0.0000001")),
    (0, Decimal("0.00000001")),
)
_BTC_TICK = Decimal("0.00000001")
_LEVEL_STEPS = 5
"""KRW markets support aggregation at tick×10 … tick×10^5 (as KRW-BTC: 10000 … 100000000)."""

_KRW_PER_BTC = 103_000_000.0
_KRW_PER_USDT = 1_450.0

# code, Korean name, English name, KRW price, quotes (K = KRW, B = BTC, U = USDT), tier (1 = liquid)
_COINS: tuple[tuple[str, str, str, float, str, int], ...] = (
    ("BTC", "비트코인", "Bitcoin", 103_000_000, "KU", 1),
    ("ETH", "이더리움", "Ethereum", 4_500_000, "KBU", 1),
    ("XRP", "리플", "XRP", 2_045, "KBU", 1),
    ("SOL", "솔라나", "Solana", 200_000, "KBU", 1),
    ("DOGE", "도지코인", "Dogecoin", 250, "KBU", 1),
    ("USDT", "테더", "Tether", 1_450, "K", 1),
    ("ADA", "에이다", "Cardano", 800, "KBU", 2),
    ("TRX", "트론", "TRON", 400, "KBU", 2),
    ("XLM", "스텔라루멘", "Stellar Lumens", 236, "KB", 2),
    ("LINK", "체인링크", "Chainlink", 20_000, "KBU", 2),
    ("DOT", "폴카닷", "Polkadot", 6_000, "KBU", 2),
    ("BCH", "비트코인캐시", "Bitcoin Cash", 667_000, "KBU", 2),
    ("ETC", "이더리움클래식", "Ethereum Classic", 25_000, "KBU", 2),
    ("AVAX", "아발란체", "Avalanche", 30_000, "KBU", 2),
    ("SAND", "샌드박스", "The Sandbox", 400, "KBU", 2),
    ("MANA", "디센트럴랜드", "Decentraland", 400, "KB", 2),
    ("NEAR", "니어프로토콜", "NEAR Protocol", 1_920, "KBU", 2),
    ("POL", "폴리곤 에코시스템 토큰", "POL (ex-MATIC)", 300, "KB", 2),
    ("ATOM", "코스모스", "Cosmos", 6_000, "KBU", 2),
    ("HBAR", "헤데라", "Hedera", 250, "KBU", 2),
    ("SUI", "수이", "Sui", 4_000, "KBU", 2),
    ("APT", "앱토스", "Aptos", 8_000, "KBU", 2),
    ("ARB", "아비트럼", "Arbitrum", 600, "KBU", 2),
    ("SHIB", "시바이누", "Shiba Inu", 0.02, "KU", 2),
    ("PEPE", "페페", "Pepe", 0.015, "KU", 2),
    ("SEI", "세이", "Sei", 92.8, "KBU", 2),
    ("FIL", "파일코인", "Filecoin", 1_316, "KB", 2),
    ("IP", "스토리", "Story", 1_141, "K", 2),
    ("VIRTUAL", "버추얼프로토콜", "Virtuals Protocol", 1_043, "K", 2),
    ("ENSO", "엔소", "Enso", 1_629, "K", 2),
    ("MANTRA", "만트라", "MANTRA", 24.9, "K", 2),
    ("RENDER", "렌더토큰", "Render", 2_273, "KB", 2),
    ("AAVE", "에이브", "Aave", 300_000, "KBU", 2),
    ("UNI", "유니스왑", "Uniswap", 12_000, "KBU", 2),
    ("ONDO", "온도파이낸스", "Ondo", 1_300, "KBU", 2),
    ("ENA", "에테나", "Ethena", 700, "KBU", 2),
    ("WLD", "월드코인", "Worldcoin", 1_500, "KBU", 2),
    ("TIA", "셀레스티아", "Celestia", 2_500, "KBU", 2),
    ("BONK", "봉크", "Bonk", 0.03, "KU", 2),
    ("TRUMP", "오피셜트럼프", "OFFICIAL TRUMP", 12_000, "KU", 2),
    ("USDC", "유에스디코인", "USD Coin", 1_450, "KU", 2),
    ("XEM", "넴", "NEM", 30, "K", 3),
    ("EOS", "이오스", "EOS", 700, "KB", 3),
    ("QTUM", "퀀텀", "Qtum", 3_000, "KB", 3),
    ("NEO", "네오", "NEO", 10_000, "KB", 3),
    ("IOTA", "아이오타", "IOTA", 300, "KB", 3),
    ("ICX", "아이콘", "ICON", 200, "K", 3),
    ("WAVES", "웨이브", "Waves", 1_500, "K", 3),
    ("BTT", "비트토렌트", "BitTorrent", 0.0012, "K", 3),
    ("ALGO", "알고랜드", "Algorand", 300, "KB", 3),
    ("GRT", "더그래프", "The Graph", 150, "KB", 3),
    ("STX", "스택스", "Stacks", 1_000, "KB", 3),
    ("IMX", "이뮤터블엑스", "Immutable", 1_000, "KB", 3),
    ("SNX", "신세틱스", "Synthetix", 1_000, "KB", 3),
    ("CRO", "크로노스", "Cronos", 150, "KB", 3),
    ("THETA", "쎄타토큰", "Theta Token", 1_200, "KB", 3),
    ("AXS", "엑시인피니티", "Axie Infinity", 4_000, "KB", 3),
    ("ENS", "이더리움네임서비스", "Ethereum Name Service", 25_000, "KB", 3),
    ("CHZ", "칠리즈", "Chiliz", 60, "KB", 3),
    ("ZIL", "질리카", "Zilliqa", 20, "KB", 3),
    ("ONT", "온톨로지", "Ontology", 200, "K", 3),
    ("ANKR", "앵커", "Ankr", 25, "KB", 3),
    ("SXP", "솔라", "Solar", 300, "K", 3),
    ("MED", "메디블록", "MediBloc", 8, "K", 3),
    ("BORA", "보라", "BORA", 100, "K", 3),
    ("KAVA", "카바", "Kava", 500, "KB", 3),
    ("GAS", "가스", "Gas", 4_000, "KB", 3),
    ("HIVE", "하이브", "Hive", 300, "KB", 3),
    ("STEEM", "스팀", "Steem", 200, "KB", 3),
    ("ARDR", "아더", "Ardor", 100, "KB", 3),
    ("MTL", "메탈", "Metal", 1_200, "K", 3),
    ("STORJ", "스토리지", "Storj", 500, "KB", 3),
    ("KNC", "카이버네트워크", "Kyber Network", 700, "K", 3),
    ("ZRX", "제로엑스", "0x Protocol", 400, "K", 3),
    ("BAT", "베이직어텐션토큰", "Basic Attention Token", 250, "KB", 3),
    ("1INCH", "1인치네트워크", "1inch Network", 350, "KB", 3),
    ("FLOW", "플로우", "Flow", 600, "KB", 3),
    ("T", "쓰레스홀드", "Threshold", 25, "K", 3),
    ("TT", "썬더코어", "ThunderCore", 4, "K", 3),
    ("CVC", "시빅", "Civic", 150, "K", 3),
    ("SC", "시아코인", "Siacoin", 5, "KB", 3),
    ("GLM", "골렘", "Golem", 400, "KB", 3),
    ("POWR", "파워렛저", "Powerledger", 250, "KB", 3),
    ("ONG", "온톨로지가스", "Ontology Gas", 300, "K", 3),
    ("JST", "저스트", "JUST", 40, "KB", 3),
    ("SUN", "썬", "Sun", 25, "K", 3),
    ("ASTR", "아스타", "Astar", 50, "KB", 3),
    ("BLUR", "블러", "Blur", 200, "KB", 3),
    ("ID", "스페이스아이디", "SPACE ID", 300, "K", 3),
    ("PYTH", "피스네트워크", "Pyth Network", 200, "KB", 3),
    ("JUP", "주피터", "Jupiter", 800, "KB", 3),
    ("W", "웜홀", "Wormhole", 150, "K", 3),
    ("ZRO", "레이어제로", "LayerZero", 3_500, "K", 3),
    ("TAIKO", "타이코", "Taiko", 500, "K", 3),
    ("MINA", "미나", "Mina", 300, "KB", 3),
    ("EGLD", "멀티버스엑스", "MultiversX", 25_000, "KB", 3),
    ("XTZ", "테조스", "Tezos", 900, "KB", 3),
    ("VET", "비체인", "VeChain", 35, "KB", 3),
    ("VTHO", "비토르토큰", "VeThor Token", 0.878, "K", 3),
    ("HPO", "히포크랏", "Hippocrat", 50, "K", 3),
    ("ELF", "엘프", "aelf", 300, "K", 3),
    ("CELO", "셀로", "Celo", 300, "KB", 3),
    ("GMT", "스테픈", "STEPN", 80, "K", 3),
    ("MOCA", "모카네트워크", "Moca Network", 100, "K", 3),
    ("PENGU", "펏지펭귄", "Pudgy Penguins", 15, "K", 3),
    ("LAYER", "솔레이어", "Solayer", 1_000, "K", 3),
    ("ARK", "아크", "Ark", 500, "K", 3),
    ("LSK", "리스크", "Lisk", 600, "K", 3),
    ("SNT", "스테이터스네트워크토큰", "Status Network Token", 30, "K", 3),
    ("POLYX", "폴리매쉬", "Polymesh", 200, "K", 3),
    ("STRAX", "스트라티스", "Stratis", 60, "K", 3),
    ("AERGO", "아르고", "Aergo", 120, "K", 3),
    ("BIGTIME", "빅타임", "Big Time", 80, "K", 3),
    ("BLAST", "블라스트", "Blast", 5, "K", 3),
    ("COMP", "컴파운드", "Compound", 60_000, "KB", 3),
    ("AKT", "아카시네트워크", "Akash Network", 2_000, "KB", 3),
    ("CTC", "크레딧코인", "Creditcoin", 500, "K", 3),
    ("ME", "매직에덴", "Magic Eden", 1_500, "K", 3),
    ("MEW", "캣인어독스월드", "cat in a dogs world", 4, "K", 3),
    ("ZETA", "제타체인", "ZetaChain", 300, "K", 3),
    ("INJ", "인젝티브", "Injective", 15_000, "KB", 3),
    ("GRS", "그로스톨코인", "Groestlcoin", 400, "KB", 3),
    ("QKC", "쿼크체인", "QuarkChain", 10, "K", 3),
    ("ORBS", "오브스", "Orbs", 30, "K", 3),
    ("STG", "스타게이트파이낸스", "Stargate Finance", 300, "K", 3),
    ("XEC", "이캐시", "eCash", 0.04, "K", 3),
    ("AUCTION", "바운스토큰", "Bounce Token", 15_000, "K", 3),
    ("ATH", "에이셔", "Aethir", 50, "K", 3),
    ("SAFE", "세이프", "Safe", 500, "K", 3),
)

# How often a market trades relative to KRW-BTC, by tier; cross markets trade less.
_TIER_ACTIVITY: dict[int, float] = {1: 1.0, 2: 0.12, 3: 0.025}
_CROSS_ACTIVITY = 0.2
CAUTION_KEYS: tuple[str, ...] = (
    "PRICE_FLUCTUATIONS",
    "TRADING_VOLUME_SOARING",
    "DEPOSIT_AMOUNT_SOARING",
    "GLOBAL_PRICE_DIFFERENCES",
    "CONCENTRATION_OF_SMALL_ACCOUNTS",
)
"""The ``market_event.caution`` flags of ``market/all?is_details=true``, in Upbit's order."""


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """One listed market and the parameters of its random walk."""

    market: str
    korean_name: str
    english_name: str
    start_price: float
    """Tick-aligned price at the start of the generated history."""
    activity: float
    """Relative trade rate (KRW-BTC = 1.0)."""
    volatility: float
    """Standard deviation of the log price change over one hour."""
    typical_volume: float
    """Mean trade size in base currency."""
    warning: bool
    cautions: tuple[str, ...]
    """Caution flags set (``market_event.caution`` keys)."""

    @property
    def quote(self) -> str:
        return self.market.split("-", 1)[0]


def _bands(
    table: tuple[tuple[float, Decimal], ...],
) -> tuple[tuple[float, float, int, Decimal], ...]:
    return tuple((floor, float(tick), decimals_of(tick), tick) for floor, tick in table)


def decimals_of(tick: Decimal) -> int:
    """Digits after the point of a tick (``0.001`` → 3, ``1000`` → 0)."""
    exponent = tick.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


_BANDS: dict[str, tuple[tuple[float, float, int, Decimal], ...]] = {
    "KRW": _bands(_KRW_TICKS),
    "USDT": _bands(_USDT_TICKS),
    "BTC": _bands(((0, _BTC_TICK),)),
}


def tick_band(quote: str, price: float) -> tuple[float, int]:
    """``(tick, digits)`` of the price band of ``price``: the tick as a float and its decimals."""
    for floor, tick, digits, _ in _BANDS[quote]:
        if price >= floor:
            return tick, digits
    band = _BANDS[quote][-1]
    return band[1], band[2]


def tick_size(quote: str, price: float) -> Decimal:
    """Upbit's order price unit for a market quoted in ``quote`` at ``price``."""
    for floor, _, _, tick in _BANDS[quote]:
        if price >= floor:
            return tick
    return _BANDS[quote][-1][3]


def round_to_tick(quote: str, price: float) -> float:
    """``price`` snapped to the nearest tick of its band (never below one tick)."""
    tick, digits = tick_band(quote, price)
    snapped = round(round(price / tick) * tick, digits)
    return snapped if snapped > 0 else tick


def format_decimal(value: Decimal) -> str:
    """A tick or level as Upbit writes it: plain notation, no exponent (``0.00000001``)."""
    return format(value.normalize(), "f")


def supported_levels(quote: str, price: float) -> tuple[Decimal, ...]:
    """Aggregation levels of ``/v1/orderbook`` (KRW only; other quotes support ``0`` only)."""
    if quote != "KRW":
        return (Decimal(0),)
    tick = tick_size(quote, price)
    return (Decimal(0), *(tick * Decimal(10) ** k for k in range(1, _LEVEL_STEPS + 1)))


def build_catalogue(seed: int) -> list[MarketInfo]:
    """The market list for ``seed``: same codes and names for every seed, seeded prices."""
    rng = random.Random(f"catalogue/{seed}")
    btc_krw = _KRW_PER_BTC * rng.uniform(0.85, 1.15)
    usdt_krw = _KRW_PER_USDT * rng.uniform(0.98, 1.02)
    krw_factors = {code: rng.uniform(0.8, 1.25) for code, *_ in _COINS}
    krw_factors["BTC"] = btc_krw / _KRW_PER_BTC
    krw_factors["USDT"] = usdt_krw / _KRW_PER_USDT
    markets: list[MarketInfo] = []
    for quote_letter, quote in (("K", "KRW"), ("B", "BTC"), ("U", "USDT")):
        for code, korean, english, krw_price, quotes, tier in _COINS:
            if quote_letter not in quotes:
                continue
            price_krw = krw_price * krw_factors[code]
            divisor = {"KRW": 1.0, "BTC": btc_krw, "USDT": usdt_krw}[quote]
            activity = _TIER_ACTIVITY[tier] * (1.0 if quote == "KRW" else _CROSS_ACTIVITY)
            if (code, quote) in {("ETH", "BTC"), ("BTC", "USDT")}:
                activity = _TIER_ACTIVITY[2]
            flagged = rng.random() < 0.04
            cautions = tuple(key for key in CAUTION_KEYS if flagged and rng.random() < 0.5)
            markets.append(
                MarketInfo(
                    market=f"{quote}-{code}",
                    korean_name=korean,
                    english_name=english,
                    start_price=round_to_tick(quote, price_krw / divisor),
                    activity=activity,
                    volatility=0.004 * (1.0 + tier) * rng.uniform(0.7, 1.3),
                    typical_volume=_typical_volume(price_krw, tier, rng),
                    warning=rng.random() < 0.02,
                    cautions=cautions,
                )
            )
    return markets


def _typical_volume(price_krw: float, tier: int, rng: random.Random) -> float:
    """Mean trade size in base units: a few hundred thousand KRW a trade, less for thin markets."""
    notional = 400_000.0 / tier * rng.uniform(0.5, 2.0)
    raw = notional / max(price_krw, 1e-12)
    digits = max(0, 8 - max(0, int(math.log10(raw)) + 1)) if raw > 0 else 8
    return round(raw, digits) or 1e-8
