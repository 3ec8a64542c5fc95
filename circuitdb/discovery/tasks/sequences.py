"""The sequence-continuation material shared by the tasks and the toy model: members, templates, fillers."""

from __future__ import annotations

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
          "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# name -> members in order; member i is the i-th value of the sequence (digits start at 0, the others at 1)
SEQUENCES: dict[str, list[str]] = {
    "digits": [str(i) for i in range(100)],
    "numwords": NUMBER_WORDS[1:],
    "months": MONTHS,
    "days": DAYS,
}

# the seqcont research's templates: "{W} done in {S} ." repeated, then "{W} done in" -> next member
TEMPLATES: dict[str, str] = {
    "done": "{W} done in {S} .",
    "lost": "{W} lost in {S} .",
    "born": "{N} born in {S} .",
}
WORDS = ["Van", "Hat", "Ring", "Desk", "Sun", "Car", "Book", "Lamp", "Door", "Tree", "Cup", "Bell", "Coat", "Ship", "Key",
         "Box", "Pen", "Fish", "Road", "Shoe"]
NAMES = ["Anna", "Ben", "Cara", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivan", "Jade", "Kai", "Lena", "Max", "Nora", "Omar",
         "Pia"]
PUNCTUATION = ["."]
VERBS = ["done", "lost", "born", "in"]


def filler_slot(template: str) -> str:
    """Which filler list a template's first slot draws from (names for "born", words otherwise)."""
    return "N" if "{N}" in template else "W"


def fillers(template: str) -> list[str]:
    return NAMES if filler_slot(template) == "N" else WORDS


def render(template: str | None, members: list[str], words: list[str]) -> str:
    """The prompt for `members` (the answer excluded): bare "1 2 3 4" or templated clauses ending "Sun done in"."""
    if template is None:
        return " ".join(members)
    slot = filler_slot(template)
    clauses = [template.replace("{" + slot + "}", w).replace("{S}", m) for w, m in zip(words, members)]
    last = template.replace("{" + slot + "}", words[len(members)]).split(" {S}")[0]
    return " ".join([*clauses, last])
