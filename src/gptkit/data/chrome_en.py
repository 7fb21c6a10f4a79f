"""English page chrome by its general shape (round 10): what a byline, a dateline, a read time, a profile field,
a photo credit or a widget's sentence looks like on any site, not on one. `en_chrome(line)` names the rule
(`metadata`, `tags`, `widget`, `markup`) or returns None; gptkit.data.line_rules.classify_line asks it last,
for lines of Latin text without Han characters that no other rule dropped, so every rule before it keeps its
verdicts.

    metadata   a line made of dates, read times, counters and "by NAME" with at most a short name or a label
               around them ("Meg Larsen May 5, 2020", "Jan 3, 2021 · 4 min read", "Published March 02, 2014 by
               Fr. Paul Counce", "Last edited by jdoe; 01-18-04 at 09:29 PM.", "Posted in News | 3 Comments",
               "17 reviews"); a profile or file field ("Joined: Dec 2002", "Posts: 888", "Reputation: 120"); a
               credit ("(Photo by Jane Doe/Getty Images)", "Reviewed by Dr. Jane Doe, MD", "AP Photo/Jane Doe"),
               a role line ("Jane Doe, Staff Writer"), WordPress's "This entry was posted in ..." footer
    widget     sentences only interfaces say: comment forms ("Your email address will not be published"),
               newsletter boxes ("Get the latest news delivered to your inbox", "No spam. Unsubscribe
               anytime."), cookie banners ("We use cookies ..."), "Opens in a new window", "Story continues
               below advertisement", "Did this answer your question?"
    tags       tag rows without a colon and archive labels ("Tagged travel, Iceland", "Archive for the ‘Travel’
               Category", "▼ March (3)")
    markup     template keys and image-service paths ("custom_page_url:https://…", ":max_bytes(150000):…jpg)")

Prose stays: a line with a stop word left over once the dates, names and event words are taken out ("Toddler
Storytime is at the Main Library on Tuesdays at 10 a.m.") is a sentence, and a time alone (a schedule:
"10:30am, Tuesdays & Wednesdays") is not a date.
"""

from __future__ import annotations

import re

from gptkit.data.chrome_terms import _ASCII_LETTERS, _UI_TERMS_EN
from gptkit.data.context import STOPWORDS_EN

EN_META_MAX_CHARS = 100
EN_META_MAX_REST_TOKENS = 4  # a name ("Fr. Paul Counce") or a label ("Uncategorized"), no more
WIDGET_MAX_CHARS = 200
WIDGET_MAX_START = 40  # in a longer line the widget's sentence opens it

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:mon|tue(?:s)?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?\.?"
# a full date: day, month and year (a month and a year alone, "Dec 2002", only counts beside an event word)
_FULL_DATE = (
    rf"(?:{_WEEKDAY},?\s+)?(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}"
    rf"|\d{{1,2}}-{_MONTH}-\d{{2,4}})"
    r"|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}-\d{1,2}-\d{2,4}|\d{1,2}\.\d{1,2}\.\d{4}|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
)
_AGO = r"\d+\s+(?:seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)\s+ago"
_READ_TIME = r"\d+\s*(?:-\s*)?(?:min(?:ute)?s?|m)\.?\s+read|read(?:ing)?\s+time\s*:?\s*\d+\s*(?:min(?:ute)?s?|m)\b"
_COUNTER = (
    r"\d[\d,.]*\s*[kKmM]?\s+(?:comments?|repl(?:y|ies)|responses?|views?|likes?|shares?|reviews?|ratings?|posts?"
    r"|votes?|followers?|subscribers?|reads?|answers?)"
)
# the strong signs of a metadata line: one must be there
_STRONG = re.compile(rf"(?<![\w/.-])(?:{_FULL_DATE}|{_AGO}|{_READ_TIME}|{_COUNTER})(?![\w/-])", re.I)
_WEAK = re.compile(
    rf"(?<![\w/.-])(?:{_MONTH}\s+\d{{4}}|{_WEEKDAY}|\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s*(?:[ap]\.?m\.?)?(?:\s+[A-Z]{{2,4}})?"
    r"|\d{1,2}\s*[ap]\.?m\.?)(?![\w/-])",
    re.I,
)
# what a metadata line says around its dates and names
_EVENT = re.compile(
    r"(?<![\w'’-])(?:this\s+(?:entry|post|article|page|story)\s+(?:was|is)|(?:first|originally|last)|(?:medically|expert)"
    r"|posted|published|updated|edited|modified|written|reviewed|fact[\s-]?checked|created|submitted|uploaded?"
    r"|post|date[ds]?|time|on|at|by|in|and|under|filed|tagged|to|from|quote|joined|since"
    r"|says|said|wrote|replied|commented)(?![\w'’-])",
    re.I,
)
_NUMERIC_DATE = re.compile(r"[\d/.-]+")
# the event words that say a line is about its page (not the stop words among them: "on", "at", "by")
_EVENT_WORD = re.compile(
    r"(?<![\w'’-])(?:posted|published|updated|edited|modified|written|reviewed|created|submitted|uploaded?|post"
    r"|joined)(?![\w'’-])",
    re.I,
)
_SEPARATORS = re.compile(r"[|·•—–\-,;:()\[\]/#*]+|\.(?=\s|$)|&|@(?!\w)")
_AT_HANDLE = re.compile(r"^@\w+$")
_NAME_TOKEN = re.compile(r"^(?:[A-Z][\w.'’-]*|[A-Z]\.)$")  # "Counce", "Fr.", "O'Neil", "SyderJL", "MD"
# "jdoe_2", "user1234"; not a number ("2.8.0": a version)
_HANDLE = re.compile(r"^(?=[\w.'’-]*[A-Za-z])[\w.'’-]*\d[\w.'’-]*$|^[a-z][\w.'’-]*_[\w.'’-]*$")
_BY = re.compile(r"(?<![\w'’-])by\s+\S", re.I)
_BY_HANDLE = re.compile(r"(?<![\w'’-])(?i:by)\s+@?([\w.'’-]+)")

# profile, post and file fields ("Joined: Dec 2002", "Posts: 888")
_FIELD = re.compile(
    r"^(?:joined|join\s+date|member\s+since|registered|posts|messages|reputation|rep\s+power|reaction\s+score"
    r"|likes\s+received|karma|trophy\s+points|gender|last\s+(?:edited|modified|updated|seen|active|online)"
    r"|read(?:ing)?\s+time|word\s+count|uploaded(?:\s+(?:by|on))?|upload|post(?:ed)?\s+(?:on|by|date)|views)"
    r"\s*:\s*(\S.{0,39})$",
    re.I,
)
_CREDIT = re.compile(
    r"^[(\[]?(?:(?:AP|AFP|Reuters|Getty)\s+)?(?:photo(?:graph)?s?|images?|pictures?|illustrations?|graphics?|videos?"
    r"|artwork|map)\s*(?:by|courtesy(?:\s+of)?|credit|source|/)\s*[:]?\s*\S.{0,80}$"
    r"|^(?:(?:medically|expert)\s+)?(?:reviewed|fact[\s-]?checked|edited|compiled|curated|illustrated|narrated)"
    r"\s+by\s+[A-Z]"
    r"|^(?:image\s+source,?\s+)?(?:getty\s+images|shutterstock|istock(?:photo)?|alamy(?:\s+stock\s+photo)?|unsplash|pexels)"
    r"(?:\s*[/,]\s*\S.{0,60})?$",
    re.I,
)
_ROLE = re.compile(
    r"^(?:(?i:by\s+)?[A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){0,3}\s*[,|·•—–-]?\s+)?(?i:(?:(?:staff|senior|contributing|chief"
    r"|associate|managing|deputy|executive|special|freelance|guest)\s+)?(?:writer|reporter|editor|correspondent"
    r"|contributor|columnist|journalist|producer))$",  # one person's role: "Contributors" is a heading
)
_BY_EVENT = re.compile(
    r"^(?:(?:originally|first|last)\s+)?(?:posted|written|published|shared|submitted|uploaded|created|edited"
    r"|quoted|sent|reported)\s+(?=by\s)",
    re.I,
)
# a forum member's rank under the name ("Senior Member", "Registered User")
_FORUM_RANK = re.compile(
    r"^(?:(?:junior|senior|new|active|full|premium|gold|silver|bronze|registered|veteran|super|elite|banned)\s+"
    r"(?:member|user|poster)|moderator|administrator|super\s+moderator)$",
    re.I,
)
# links of an author box: "Follow Jane Doe on Twitter", "More from Jane Doe", "View all posts by jdoe"
_AUTHOR_LINK = re.compile(
    r"^(?:follow|more\s+(?:(?:stories|articles|posts)\s+)?(?:from|by)|(?:see|view)\s+(?:all\s+)?(?:posts|articles"
    r"|stories)\s+by|e-?mail)\s+(?=[A-Z@])",  # not "About" / "Contact": "About Dill", "Contact Tracing" are headings
    re.I,
)
# a lone label with nothing after its colon ("RELATED:", "READ MORE:"), a gallery's counter ("Image 1 of 5")
_LONE_LABEL = re.compile(
    r"^(?:related|read\s+more|see\s+also|also\s+read|read\s+also|watch|listen|more|recommended|trending)\s*:$"
    r"|^(?:edited|updated|sponsored|no\s+comments)\s*:?$"
    r"|^(?:image|photo|picture|slide)\s+\d+\s+(?:of|/)\s+\d+$",
    re.I,
)
# a tag or category row without a colon ("Tagged travel, Iceland", "Posted in News, Events | 3 Comments" is
# a metadata row): the label, then up to eight short items
_TAG_ROW = re.compile(
    r"^(?:tagged(?:\s+with)?|tags|topics|categories|category|labels|filed\s+in|published\s+in)\s*:?\s+"
    r"(?:[\w'’&.-]+(?:\s+[\w'’&.-]+){0,2}(?:\s*[,|·•/]\s*|$)){1,8}$",
    re.I,
)
# an archive page's label ("Archive for the ‘Travel’ Category", "Archive | November 2013", "Monthly Archives: May 2019")
_ARCHIVE = re.compile(
    rf"^(?:(?:monthly|yearly|daily|category|tag|author)\s+)?archives?(?:\s+for\s+(?:the\s+)?\S"
    rf"|\s*[|:·•-]\s*(?:{_MONTH}\s+)?\d{{4}}$)"
    rf"|^[►▼▶▸◄]?\s*(?:{_MONTH}(?:\s+\d{{4}})?|\d{{4}})\s*\(\d+\)$",  # a blog archive's tree: "► 2021 (12)"
    re.I,
)
# an image service's path left alone on a line (":max_bytes(150000):strip_icc()/name-01.jpg)"): no space, a
# path to an image file and the punctuation of parameters, but no "://" (a whole URL may be a reference)
_URL_FRAGMENT = re.compile(r"^(?!.*://)(?=.*/)\S*\.(?:jpe?g|png|gif|webp|avif|svg)\b\S*$", re.I)  # no URL: a reference
_URL_PARAMS = re.compile(r"[:()=&?%]")
# a template key left in the text ("custom_page_url:https://…"): a snake_case key, then a URL or nothing
_TEMPLATE_KEY = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+\s*:\s*(?:https?://\S*)?$")
_WORDPRESS_FOOTER = re.compile(
    r"^this\s+(?:entry|post)\s+was\s+(?:posted|filed)\s+(?:in|under)\b|\bbookmark\s+the\s+permalink\b", re.I
)

_WIDGET = re.compile(
    r"your\s+e-?mail(?:\s+address)?\s+will\s+not\s+be\s+(?:published|shared)|required\s+fields\s+are\s+marked"
    r"|notify\s+me\s+of\s+(?:new|follow-?up)|save\s+my\s+name,?\s+e-?mail|uses\s+akismet"
    r"|(?:please\s+)?enable\s+javascript\s+to\s+(?:view|see|use)|comments?\s+powered\s+by"
    r"|be\s+the\s+first\s+to\s+(?:comment|review|reply|rate|know)|there\s+are\s+no\s+(?:comments|reviews|replies)"
    r"|no\s+(?:comments|reviews|replies)\s+yet|unsubscribe\s+(?:at\s+)?any\s*time"
    r"|thanks?\s+(?:you\s+)?for\s+(?:subscribing|signing\s+up)"
    r"|(?:delivered|sent|straight|directly|right)\s+to\s+your\s+inbox|enter\s+your\s+e-?mail"
    r"|we\s+use\s+cookies|accept\s+(?:all\s+)?cookies|(?:cookie|privacy)\s+(?:settings|preferences|consent)"
    r"|manage\s+(?:cookies|consent|(?:your\s+)?preferences)"
    r"|(?:sign\s+up|subscribe|register)\s+(?:for|to)\s+(?:our|the)\s+(?:free\s+)?(?:\w+\s+)?(?:newsletters?|mailing\s+list)"
    r"|(?:join|get)\s+our\s+(?:free\s+)?(?:\w+\s+)?(?:newsletters?|mailing\s+list)"
    r"|opens\s+in\s+(?:a\s+)?new\s+(?:window|tab)|click\s+to\s+(?:share|print|e-?mail|enlarge|expand)"
    r"|(?:story|article|content)\s+continues\s+(?:below|after)|continue\s+reading\s+(?:below|the\s+(?:main\s+)?story)"
    r"|report\s+this\s+ad|did\s+this\s+answer\s+your\s+question|(?:was|is)\s+this\s+(?:\w+\s+)?(?:helpful|useful)\s*\?"
    r"|printer[\s-]friendly\s+(?:version|page|format)|did\s+you\s+mean\s*:|search\s+instead\s+for"
    r"|you\s+are\s+(?:on|viewing)\s+page\s+\d+\s*of\s*\d+|this\s+article\s+is\s+more\s+than\s+\w+\s+(?:years?|months?)\s+old"
    r"|blogthis!|share\s+to\s+(?:twitter|facebook|pinterest)|an\s+official\s+website\s+of\s+the|here['’]s\s+how\s+you\s+know"
    r"|join\s+[\d,.]+\+?\s+(?:other\s+)?(?:subscribers|readers|followers)"
    r"|(?:don['’]t|never)\s+miss\s+(?:a|another)\s+(?:post|story|thing|update)|get\s+(?:new\s+)?posts\s+by\s+e-?mail",
    re.I,
)
# a character or word each _WIDGET alternative contains (gates it, as gptkit.data.chrome_terms' hints do)
_WIDGET_HINT = re.compile(
    r"mail|fields|notify|akismet|javascript|powered|first\s+to|no\s+(?:comments|reviews|replies)|subscrib|inbox"
    r"|cookie|preferences|consent|settings|signing|newsletter|mailing|new\s+(?:window|tab)|click|continues|continue|report|answer"
    r"|helpful|useful|printer|mean|instead|page|old|blogthis|share|official|know|join|miss|posts",
    re.I,
)


def _rest_is_a_name(s: str, by: bool = False, max_tokens: int = EN_META_MAX_REST_TOKENS, min_tokens: int = 0) -> bool:
    """What is left of a metadata line once its dates, times, event words and separators are out: nothing, or a
    few capitalised words (a name, a label), "@handles", or a handle after "by" (`by`: the line had one before
    s); no stop word (a sentence has some)."""
    rest = _SEPARATORS.sub(" ", _EVENT.sub(" ", _WEAK.sub(" ", _STRONG.sub(" ", s))))
    if _ASCII_LETTERS.search(rest):
        rest = _UI_TERMS_EN.sub(" ", rest)  # "Leave a comment", "Share" beside a byline
    tokens = rest.split()
    if not min_tokens <= len(tokens) <= max_tokens:
        return False
    # a lower-case word is a handle only right after "by" ("by jdoe"), and alone: "By mine honour" is verse
    handles = {m.group(1) for m in _BY_HANDLE.finditer(s)}
    if by and not handles:
        handles = {s.split()[0]} if s.split() else set()
    lower = 0
    for t in tokens:
        if t.lower() in STOPWORDS_EN:
            return False
        if _NAME_TOKEN.match(t) or _AT_HANDLE.match(t) or _HANDLE.match(t):
            continue
        if t in handles and t.isalnum():
            lower += 1
            continue
        return False
    return lower <= 1 and not (lower and len(tokens) > 1)


def _wrapped_tail(s: str) -> bool:
    """Opens in lower case and ends in a full stop after a word longer than an abbreviation ("by Licensee.", "on
    Wed, 15 Dec 2004."): the end of a sentence wrapped onto its own line, not a byline ("PM.", "Jr.", "MD." are
    abbreviations)."""
    last = s.split()[-1] if s.split() else ""
    return s[:1].islower() and last.endswith(".") and len(last.rstrip(".")) > 3


def _metadata_row(s: str) -> bool:
    """Dates, read times, counters and "by NAME" with at most a name or a label around them (module docstring)."""
    if _wrapped_tail(s):
        return False
    strong = _STRONG.findall(s)
    if strong and not _BY.search(s) and not _EVENT_WORD.search(s) and all(_NUMERIC_DATE.fullmatch(x) for x in strong):
        # a numeric date beside capitalised words and no event word: a dated title ("Bulletin Letter 7/5/20")
        return _rest_is_a_name(s, max_tokens=0)
    # without a full date, read time or count, a month and year, a weekday or a time only count with an event
    # word and "by" ("Edited Dec 2002 by jdoe")
    if not strong and not (_BY.search(s) and _WEAK.search(s) and _EVENT.search(s)):
        return False
    if s.endswith(("?", "!")) or "? " in s or "! " in s:
        return False
    return _rest_is_a_name(s)


def en_chrome(s: str) -> str | None:
    """The rule for a stripped line of Latin text (module docstring), or None."""
    n = len(s)
    if n <= WIDGET_MAX_CHARS and _WIDGET_HINT.search(s):
        m = _WIDGET.search(s)
        if m and (n <= 100 or m.start() <= WIDGET_MAX_START):
            return "widget"
    if n >= 20 and " " not in s and s.isascii() and _URL_PARAMS.search(s) and _URL_FRAGMENT.match(s):
        return "markup"
    if n > EN_META_MAX_CHARS:
        return "metadata" if n <= 300 and _WORDPRESS_FOOTER.search(s) else None
    if _WORDPRESS_FOOTER.search(s):
        return "metadata"
    m = _FIELD.match(s)
    if m and not m.group(1).rstrip().endswith(("?", "!")) and ". " not in m.group(1):
        return "metadata"
    if _CREDIT.match(s) or _ROLE.match(s) or _FORUM_RANK.match(s):
        return "metadata"
    m = _AUTHOR_LINK.match(s)
    if m and _rest_is_a_name(s[m.end() :], by="by" in m.group(0).lower().split()):
        return "metadata"
    # "By Jane Doe and John Smith, CNN" (co-authors, so up to twice the tokens), "Originally Posted by jdoe"
    by_line = _BY_EVENT.sub("", s)
    if (
        by_line[:3].lower() == "by "
        and not _wrapped_tail(s)
        and _rest_is_a_name(by_line, max_tokens=2 * EN_META_MAX_REST_TOKENS, min_tokens=1)
    ):
        return "metadata"
    if _LONE_LABEL.match(s):
        return "widget"
    if "_" in s and _TEMPLATE_KEY.match(s):
        return "markup"
    if _ARCHIVE.match(s):
        return "tags"
    m = _TAG_ROW.match(s)
    if m and not s.endswith((".", "!", "?")) and not any(w in STOPWORDS_EN for w in s.lower().split()[1:]):
        return "tags"
    if (any(c.isdigit() for c in s) or _BY.search(s)) and _metadata_row(s):
        return "metadata"
    return None
