"""What page chrome says: the vocabulary single-line rules recognise boilerplate by. Interface terms and
counters (share / login / follow buttons, "评论(12)", "3 comments") and how much of a line they cover
(`_ui_chrome`), notices (copyright, disclaimers, reposting, document-sharing sites, ICP licences), contact
lines, promotions, login prompts and calls to action, each with the cheap hint that gates its costly pattern.
gptkit.data.line_rules applies them, with the rules about a line's shape, in `classify_line`.
"""

from __future__ import annotations

import re

from gptkit.data.filters import HAN, count_han

_HAN_RE = re.compile(f"[{HAN}]")
_WORDISH = re.compile(rf"[A-Za-z0-9{HAN}]")

# Interface vocabulary. A line is chrome when these (and counters, separators, digits) cover almost all of it.
_UI_ZH = (
    "字[体号]\\s*[:：]?\\s*[【\\[]?大[】\\]]?\\s*[【\\[]?中[】\\]]?\\s*[【\\[]?小[】\\]]?|"  # longest first
    "分享到|分享至|一键分享|分享|转发|收藏本文|收藏|点赞|打赏|举报|纠错|投诉|打印本页|打印|关闭窗口|关闭|字号|字体|放大|缩小|"
    "默认|扫一扫|扫码关注|扫码|扫描二维码|二维码|关注我们|关注公众号|微信公众号|公众号|关注|微信|朋友圈|微博|新浪微博|"
    "腾讯微博|QQ空间|QQ好友|QQ|豆瓣|人人网|贴吧|复制链接|登录|登陆|注册|免费注册|立即注册|退出|找回密码|忘记密码|"
    "个人中心|会员中心|我的账户|在线客服|客服热线|客服电话|联系客服|客服|在线咨询|咨询热线|服务热线|返回顶部|回到顶部|"
    "返回首页|返回列表|返回|查看更多|查看全部|查看详情|查看原文|更多|阅读全文|阅读原文|展开全文|全文|展开|收起|点击查看|"
    "点击进入|点击这里|点击|加载更多|发表评论|我要评论|写评论|参与评论|网友评论|评论|回复|下载APP|下载客户端|客户端|"
    "手机版|电脑版|网站导航|网站地图|关于我们|关于本站|联系我们|隐私政策|隐私条款|用户协议|服务条款|意见反馈|帮助中心|"
    "广告服务|广告业务|广告合作|商务合作|代理合作|加入我们|诚聘英才|人才招聘|合作伙伴|友情链接|设为首页|加入收藏|"
    "上一页|下一页|首页|尾页|末页|上一篇|下一篇|上一章|下一章|目录|立即购买|加入购物车|购物车|在线购买|立即下载|免费下载|"
    "订阅|取消|确定|提交|搜索|热门搜索|我的订单|订单查询|购物车|加载中|正在加载|广告|推广|赞助|有用|没用|有帮助|没帮助|"
    "发表于|发布于|楼主|沙发|板凳|只看该作者|只看楼主|倒序浏览|电梯直达|支持|反对|编辑此页|编辑本页"
)
_UI_EN = (
    # round 10: the widget class in general (saving, bookmarking, reporting, comment forms, menus' toggles,
    # cookie buttons, "read the full post", feeds, site search, social networks)
    r"e-?mail\s+(?:this(?:\s+(?:article|page|story|post))?|the\s+author|address)|"
    r"(?:view|show|hide|load|see)\s+(?:all\s+)?comments|join\s+the\s+(?:conversation|discussion)|"
    r"add\s+to\s+(?:favou?rites|collection|wishlist|my\s+\w+|list|calendar)|"
    r"save\s+(?:this\s+)?(?:article|story|recipe|post|for\s+later)|gift\s+(?:this\s+)?article|"
    r"share\s+full\s+(?:article|story)|link\s+(?:copied|to\s+(?:this\s+)?(?:post|comment))|permalink|bookmark|"
    r"report\s+(?:abuse|post|comment|this\s+(?:post|comment))|cancel\s+reply|submit\s+(?:a\s+)?(?:comment|reply)|"
    r"toggle(?:\s+(?:navigation|menu|search|caption|dropdown))?|"
    r"(?:open|close)\s+(?:menu|search|navigation)|(?:primary|main|mobile|top|footer)\s+menu|hide\s+caption|"
    r"enlarge(?:\s+this\s+image)?|(?:accept|reject|decline)(?:\s+all)?(?:\s+cookies)?|download\s+pdf|"
    r"printer[\s-]friendly(?:\s+(?:version|page))?|(?:read|see|view)\s+(?:the\s+)?(?:full|entire)\s+"
    r"(?:post|page|story|article|topic|thread)|(?:entries|comments)\s+feed|rss(?:\s+feed)?|unsubscribe|"
    r"search\s+(?:this|the)\s+site|custom\s+search|follow\s+(?:topic|author)|pin\s+it|"
    r"instagram|youtube|scroll\s+to\s+continue|skip\s+advertisement|(?:read|open|continue)\s+in\s+(?:the\s+)?app|"
    r"already\s+(?:a\s+)?(?:subscriber|member|registered|have\s+an\s+account)|view\s+(?:my\s+)?(?:complete\s+|full\s+)?profile|"
    r"blog\s+archives?|reply\s+with\s+quote|quote\s+reply|multi-?quote|thread\s+tools|display\s+modes|"
    r"search\s+this\s+(?:thread|forum|blog)|sponsored\s+(?:links?|content|stories|posts?)|write\s+a\s+review|"
    r"(?:read|see)\s+(?:all\s+)?(?:\d+\s+)?(?:more\s+)?reviews|select\s+(?:a\s+)?language|translate(?:\s+this\s+page)?|"
    r"first\s+name|last\s+name|(?:show|view|load|hide|see)\s+(?:\d+\s+)?(?:more\s+)?(?:replies|answers)|"
    r"sort(?:ed)?\s+by|(?:oldest|newest|latest)(?:\s+first)?|top\s+comments|verified\s+(?:purchase|buyer|owner)|pdf|"
    r"print\s+friendly|"
    r"share(?:\s+this(?:\s+(?:article|post|story|page))?)?(?:\s+(?:on|via|to))?|tweet|facebook|twitter|linkedin|"
    r"pinterest|reddit|whatsapp|telegram|flipboard|tumblr|pocket|(?:submit|post)\s+to|show\s+more\s+sharing\s+options|e-?mail|print\s+recipe|print(?:\s+this(?:\s+(?:page|article))?)?|copy\s+link|like|"
    r"follow(?:\s+us)?(?:\s+on)?|subscribe(?:\s+now)?|newsletter|sign\s+(?:in|up|out)|log\s*(?:in|out)|register|"
    r"create\s+(?:an\s+)?account|my\s+account|forgot\s+(?:your\s+)?password|contact(?:\s+us)?|about(?:\s+(?:us|me))?|"
    r"privacy(?:\s+policy)?|terms\s+of\s+(?:use|service)|terms\s*(?:&|and)\s*conditions|cookie\s+(?:policy|settings)|"
    r"cookies|site\s*map|careers|advertise(?:\s+with\s+us)?|home(?:page)?|skip\s+to\s+(?:main\s+)?content|"
    r"back\s+to\s+top|scroll\s+to\s+top|read\s+(?:more|full\s+(?:article|story))|continue\s+reading|"
    r"show\s+more|load\s+more|view\s+(?:all|more)|see\s+(?:all|more)|click\s+here|more|"
    r"leave\s+a\s+(?:comment|reply)|post\s+a\s+comment|add\s+(?:a\s+)?comment|write\s+a\s+comment|comments?|repl(?:y|ies)|"
    r"report|customer\s+service|live\s+chat|chat\s+with\s+us|download\s+(?:the|our)\s+app|get\s+the\s+app|"
    r"previous|prev|next|older\s+posts|newer\s+posts|search|close(?:\s+window)?|buy\s+now|add\s+to\s+cart|download|loading|"
    r"advertisement|sponsored|ads?|was\s+this\s+(?:article|page|answer|post|review|information)\s+helpful|helpful|"
    r"yes|no|menu|github|(?:main\s+)?navigation(?:\s+menu)?|jump\s+to(?:\s+(?:navigation|search|recipe|content))?|"
    r"personal\s+tools|show\s+all(?:\s+answers)?|watch\s+(?:the\s+)?video|improve\s+this\s+(?:question|answer|post)|listen(?:\s+to\s+this\s+article)?|"
    r"edit\s+(?:this\s+page|on\s+github)|view\s+source|improve\s+this\s+page"
)
# counters: "评论(12)", "12条评论", "3 comments", "5 min read", "3小时前"
_COUNTER_ZH = (
    r"(?:评论|阅读|浏览|点击|点赞|收藏|分享|转发|回复|关注|粉丝|赞|顶|踩|人气|热度|有用|没用|支持|反对)"
    r"\s*[:：(（\[]?\s*\d[\d,.]*\s*[万千kKwW+]?\s*[)）\]]?"
    r"|\d[\d,.]*\s*[万千kKwW+]?\s*(?:条评论|条回复|人阅读|次阅读|次浏览|人浏览|人收藏|人点赞|人喜欢|人关注|人参与)"
    r"|\d[\d,.]*\s*[万千kKwW+]?\s*(?:个|条)?(?:回答|答案|评论|回复|赞同|浏览|关注者?)"
    r"|\d+\s*(?:分钟|小时|天)前|\d+\s*[楼#]"
)
_COUNTER_EN = (
    r"(?:views?|comments?|likes?|shares?|tweets?|pins?|saves?|replies|reads?|votes?|points?)\s*[:(\[]?\s*\d[\d,.]*\s*[kKmM+]?\s*[)\]]?"
    r"|\d[\d,.]*\s*[kKmM+]?\s*(?:views?|comments?|likes?|shares?|replies|responses|reads|upvotes?|reviews?|ratings?)"
    r"|\d[\d,.]*\s*[kKmM]?\s+(?:times|answers?|votes?|followers?)|\d+\s*min(?:ute)?s?(?:\s+read)?|thanks\s*\(\d+\)"
    r"|\d[\d,]*\s+(?:people|persons?|users?|customers?)\s+found\s+this\s+(?:review\s+)?(?:helpful|useful)"
    r"|(?:rated\s+)?\d(?:\.\d)?\s+out\s+of\s+5(?:\s+stars)?"
    r"|\d+\s+(?:minutes?|hours?|days?)\s+ago|liked\s+by\s+\d[\d,]*\s+(?:person|people)"
)
# Chinese and English terms apart: IGNORECASE makes a pattern about twice as slow, and only English needs it
_UI_TERMS_ZH = re.compile(rf"{_COUNTER_ZH}|(?:{_UI_ZH})")
_UI_TERMS_EN = re.compile(rf"(?:{_COUNTER_EN})(?![A-Za-z])|(?<![A-Za-z])(?:{_UI_EN})(?![A-Za-z])", re.I)


def _ui_sub(s: str) -> tuple[str, int]:
    """The line with interface terms and counters blanked out, and how many there were."""
    rest, n = _UI_TERMS_ZH.subn(" ", s)
    if _ASCII_LETTERS.search(rest):
        rest, m = _UI_TERMS_EN.subn(" ", rest)
        n += m
    return rest, n


_ASCII_LETTERS = re.compile(r"[A-Za-z]{2}")
# the Han characters interface terms and counters are made of (English terms hold none): any other Han character
# of a line stays uncovered, which bounds the coverage without running the term patterns
_UI_HAN = re.compile("[" + "".join(sorted(set(_HAN_RE.findall(_UI_ZH + _COUNTER_ZH)))) + "]")
UI_MAX_CHARS = 100
_PROSE = re.compile(r"[，。；]|[A-Za-z], |[a-z]\. [A-Z]")  # a clause or sentence boundary: not a widget


def is_prose(s: str) -> bool:
    """`_PROSE.search(s) is not None`, 3x faster: its Chinese marks by substring tests, the English boundaries
    (each holds ", " or ". ") by the pattern only where one of those is in the line."""
    return "，" in s or "。" in s or "；" in s or ((", " in s or ". " in s) and _PROSE.search(s) is not None)


_LETTER_OR_HAN_ALL = re.compile(rf"[A-Za-z{HAN}]")
_EN_FILLER = re.compile(
    r"(?<![A-Za-z])(?:the|a|an|to|for|on|of|with|and|or|us|our|your|this|via|in|at|by)(?![A-Za-z])", re.I
)

_DIGIT_RUN = re.compile(r"\d[\d\s()（）+-]{6,}")  # a phone number's digits: gates _CONTACT
_CONTACT = re.compile(
    r"(?:客服|热线|电话|咨询|联系|传真|hotline|customer\s+(?:service|support)|call\s+us|phone|tel|fax)"
    r"[^。！？.!?]{0,16}?[:：]?\s*[+(（]?\d[\d\s()（）+-]{6,}",
    re.I,
)
_PROMO = re.compile(
    r"(?:访问|登录|下载|关注|扫码|打开|安装|visit|download|install|get)\s*.{0,12}?"
    r"(?:www\.|m\.[a-z0-9-]+\.|[a-z0-9-]+\.(?:com|cn|net|org)\b|app\b|客户端|公众号)"
    r"|(?:扫一扫|扫码|扫描二维码|长按识别).{0,12}(?:手机|微信|app|客户端|公众号|打开|阅读|关注|下载)",
    re.I,
)
_PROMO_HINT = re.compile("[.扫识端众aA]")  # one character class: a scan of it costs a third of "...|app"
PROMO_MAX_CHARS = 80
_CALL_TO_ACTION = re.compile(
    # imperative: ends in a particle ("……就点个赞吧"), or opens with please / remember / click
    r"(?:点个赞|点赞|关注|收藏|转发|分享|订阅|评论|留言|在看)(?:一下|我们|本号|支持)?[吧哦呀啦~～]+[！!]*$"
    r"|^(?:请|欢迎|记得|点击|扫码|长按|戳)(?:大家)?(?:关注|订阅|收藏|点赞|点个赞|分享|转发|下载|阅读原文|在看)"
    r"|^(?:pin|save|rate|tag|share|like|follow|bookmark)\s+(?:it|this|us|me|the)\b"
    r"|^(?:did\s+you\s+(?:make|try|like)\s+this"
    # "click" alone opens help-page instructions too ("Click Subscribe", "Click a forum."): only what a call
    # to action clicks counts
    r"|(?:click|tap)\s+(?:here|me|to\s+\w+|(?:on\s+)?(?:the\s+)?(?:image|photo|picture|link|button|banner|thumbnail)s?))\b",
    re.I,
)
_CALL_TO_ACTION_START = re.compile("[请欢记点扫长戳a-z]", re.I)


def _call_to_action_hint(s: str) -> bool:
    """The ends a call to action has (see _CALL_TO_ACTION): a closing particle, or an opening verb or English."""
    end = s.rstrip("！!")[-1:]
    return (end != "" and end in "吧哦呀啦~～") or _CALL_TO_ACTION_START.match(s) is not None


CALL_TO_ACTION_MAX_CHARS = 40
_LOGIN_PROMPT = re.compile(
    r"^(?:请)?(?:先)?(?:登录|登陆|注册)[^。！？]{0,8}?(?:后|才能|即可|查看|下载|回复|评论|发表|看)"
    r"|^(?:please\s+)?(?:log\s*in|sign\s+(?:in|up)|register|subscribe)\s+(?:to|for)\b"
    r"|^you\s+must\s+be\s+logged\s+in"
    r"|^.{0,24}?(?:登录|登陆|注册)\s*(?:后|才能|才可以|即可)\s*(?:才能|才可以|可以)?\s*(?:查看|下载|回复|评论|发表|浏览|阅读|观看)",
    re.I,
)
_NOTICE_ZH = re.compile(
    r"版权所有|版权声明|版权归|著作权归|©|保留(?:所有|一切)权利"
    r"|转载请|转载须|转载需|禁止转载|谢绝转载|严禁转载|欢迎转载|如需转载"
    r"|未经.{0,12}(?:许可|授权|同意|允许).{0,12}(?:转载|复制|摘编|镜像|转发|使用|传播)"
    r"|本文(?:系|为|由).{0,30}(?:原创|转载|授权|发布|整理|首发)|原创文章|本文(?:来源|来自|转自|摘自)|^\W*转自|转自\s*[:：]"
    r"|免责声明|仅代表(?:作者)?(?:本人|个人)?(?:的)?观点|不代表本(?:站|网|平台|号|刊)|如(?:有|涉及|涉嫌)侵权|侵删|联系(?:我们|本站)?删除"
    r"|本(?:站|网|平台)(?:部分|所有)?(?:内容|文章|资源|图片).{0,20}(?:网络|转载|用户)|本(?:站|网)不承担"
    r"|ICP备|ICP证|公网安备|网安备|增值电信业务|经营许可证"
    r"|图片(?:来源|来自|源自)(?:于)?(?:网络|[:：])|图源(?:网络|[:：])|本帖最后由"
    r"|本文档|本资料|文档贡献者|下载(?:本|该)?文档|文档(?:格式|页数|大小|价格)|还剩.{0,8}页未读|继续阅读|VIP(?:专享|会员)"
    r"|下载券|用户上传|上传者|仅供(?:学习|交流|个人|研究)(?:交流|参考|学习)?(?:使用|之用)|原创力文档|道客巴巴|豆丁网|百度文库|docin|doc88|book118"
    r"|^\W*重定向自|维基百科，自由的百科全书"  # encyclopedia hatnotes
    r"|摘编自|授权刊发|(?:已|经)获(?:得)?(?:出版社|作者|原作者)?授权"  # excerpted with permission
)
_NOTICE_EN = re.compile(
    r"©|\(c\)\s*\d{4}|copyright|all\s+rights\s+reserved"
    r"|reproduc(?:ed|tion)|republish|without\s+(?:prior\s+)?(?:written\s+)?permission|disclaimer"
    r"|views\s+expressed|does\s+not\s+necessarily\s+reflect|not\s+responsible\s+for|terms\s+of\s+(?:use|service)"
    r"|privacy\s+policy|uses\s+cookies|cookie\s+policy|powered\s+by|theme\s+by|reprinted\s+with"
    r"|originally\s+(?:published|appeared)|this\s+article\s+(?:first\s+)?appeared|sponsored\s+content"
    # encyclopedia hatnotes and affiliate disclosures
    r"|this\s+article\s+is\s+about\b|for\s+other\s+uses,?\s+see\b|from\s+wikipedia,\s+the\s+free\s+encyclopedia"
    r"|(?:may|might)\s+(?:earn|receive)\s+(?:a\s+)?(?:small\s+)?(?:commission|compensation)|affiliate\s+(?:links?|disclosure)",
    re.I,
)
_ASCII_WORD = re.compile("[A-Za-z][A-Za-z][A-Za-z]")  # = [A-Za-z]{3}, which re scans 30% slower
_ASCII_WORD_BYTES = re.compile(b"[A-Za-z][A-Za-z][A-Za-z]")


def has_ascii_word(s: str) -> bool:
    """`_ASCII_WORD.search(s) is not None`, 2x faster on Chinese text: the bytes of s's ASCII characters alone
    are searched first (a run of three letters in s is still one there; a run there may not be one in s)."""
    if s.isascii():
        return _ASCII_WORD.search(s) is not None
    return _ASCII_WORD_BYTES.search(s.encode("ascii", "ignore")) is not None and _ASCII_WORD.search(s) is not None


# The only non-ASCII characters that re.IGNORECASE matches to an ASCII letter (every code point checked in
# tests/test_fast_paths.py): after this fold and lower(), a case-insensitive ASCII literal is a plain substring.
_FOLD_TO_ASCII = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
# one literal that each alternative of _NOTICE_EN holds (lower case); tests/test_clean.py checks it with
# hypothesis. _NOTICE_EN is case-insensitive, which turns off re's skipping between literals: this test on the
# folded text is 4x cheaper than the pattern on the English lines that lack all of them
_NOTICE_EN_HINT = re.compile(
    r"©|\(c\)|copyright|rights|reproduc|republish|without|disclaimer|expressed|necessarily|responsible|terms"
    r"|privacy|cookie|powered|theme|reprinted|originally|article|sponsored|other|wikipedia|commission"
    r"|compensation|affiliate"
)


def _notice_en_hint(s: str) -> bool:
    return _NOTICE_EN_HINT.search(s.lower() if s.isascii() else s.translate(_FOLD_TO_ASCII).lower()) is not None


# Hints: cheap necessary conditions for the costly patterns. Each alternative of a pattern needs one of its hint's
# characters or words (the rarest one its match must contain), so a line without a hint cannot match and the
# pattern is skipped; most prose lines have none. tests/test_clean.py checks with hypothesis that every string a
# pattern matches contains its hint: keep them in step when a pattern changes. Each alternative opens with a
# literal, so re skips ahead between their first characters (one "[版著©...]" alternative made it 5x slower).
_NOTICE_ZH_HINT = re.compile(
    "|".join("版著©留载侵删备档剩券巴丁库免仅IV")
    + "|重定向|维基百科|摘编|授权|未经|本[文站网平资]|代表本|转自|原创|增值|许可证|图[片源]|继续阅读|上传|本帖|doc|book"
)


def _notice(s: str, latin: bool = True) -> re.Match | None:
    """latin=False: s holds no run of three Latin letters, so no English notice."""
    m = _NOTICE_ZH.search(s) if _NOTICE_ZH_HINT.search(s) else None
    return m or (_NOTICE_EN.search(s) if latin and has_ascii_word(s) and _notice_en_hint(s) else None)


NOTICE_SHORT_CHARS = 80
NOTICE_MAX_CHARS = 300
NOTICE_MAX_START = 12


def _ui_chrome(s: str) -> bool:
    """Interface terms and counters cover at least 75% of the line's letters and Han characters."""
    han = count_han(s)
    if han and 4 * (han - len(_UI_HAN.findall(s))) > len(s):
        return False  # over a quarter of the line is Han characters that no interface term contains
    coverage, n_terms = _ui_coverage(s)
    return n_terms > 0 and coverage >= 0.75


def _ui_coverage(s: str) -> tuple[float, int]:
    """(fraction of the line's word characters covered by interface terms, number of terms)."""
    total = len(_WORDISH.findall(_EN_FILLER.sub("", s)))
    if total == 0:
        return 0.0, 0
    rest, n_terms = _ui_sub(s)
    rest = _EN_FILLER.sub(" ", rest)
    left = len(_LETTER_OR_HAN_ALL.findall(rest))  # digits never count as content here
    return 1.0 - left / total, n_terms


_EDIT_LINKS = frozenset({"编辑", "编辑本段", "edit", "edit source", "修改"})  # a section's edit link, alone on a line
