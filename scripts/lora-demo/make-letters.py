#!/usr/bin/env python3
"""Writes N synthetic, fictional clinic letters (a specialist's reply to the referring doctor) to stdout,
drawn from a seeded generator: the second note style of the LoRA demonstration (scripts/lora-demo/).

    make-letters.py SEED N > letters.txt

Every name, age and finding is made up. Letters are separated by a blank line and <|endoftext|>-free text,
so `xent perplexity` and the trainer read the same bytes."""
import random
import sys

CLINICS = [
    ("cardiology", "Consultant Cardiologist", [
        ("exertional chest pain", "stable angina", "a stress echocardiogram",
         ["bisoprolol 2.5 mg daily", "isosorbide mononitrate 30 mg daily"]),
        ("palpitations", "paroxysmal atrial fibrillation", "a 7-day Holter monitor",
         ["apixaban 5 mg twice daily", "bisoprolol 5 mg daily"]),
        ("breathlessness on exertion", "heart failure with reduced ejection fraction", "a transthoracic echocardiogram",
         ["ramipril 2.5 mg daily", "furosemide 40 mg in the morning"]),
    ]),
    ("respiratory", "Consultant Respiratory Physician", [
        ("a persistent cough", "poorly controlled asthma", "spirometry with reversibility",
         ["a beclometasone/formoterol inhaler two puffs twice daily"]),
        ("progressive breathlessness", "chronic obstructive pulmonary disease", "full lung function tests",
         ["a tiotropium inhaler once daily"]),
        ("daytime sleepiness and snoring", "obstructive sleep apnoea", "an overnight oximetry study", []),
    ]),
    ("endocrinology", "Consultant Endocrinologist", [
        ("poorly controlled blood glucose", "type 2 diabetes with hyperglycaemia", "an HbA1c in three months",
         ["metformin 1 g twice daily", "empagliflozin 10 mg daily"]),
        ("weight loss and tremor", "Graves' disease", "thyroid receptor antibodies",
         ["carbimazole 20 mg daily", "propranolol 40 mg three times daily"]),
        ("fatigue and low sodium", "primary adrenal insufficiency", "a short Synacthen test",
         ["hydrocortisone 10 mg in the morning and 5 mg at lunchtime"]),
    ]),
    ("neurology", "Consultant Neurologist", [
        ("recurrent headaches", "chronic migraine", "a headache diary",
         ["propranolol 80 mg modified release daily"]),
        ("episodes of loss of awareness", "focal epilepsy", "an MRI brain and an EEG",
         ["levetiracetam 250 mg twice daily"]),
        ("a tremor of the right hand", "early Parkinson's disease", "a DaTscan", ["co-careldopa 62.5 mg three times daily"]),
    ]),
    ("gastroenterology", "Consultant Gastroenterologist", [
        ("abdominal pain and diarrhoea", "Crohn's disease", "a colonoscopy with biopsies", ["budesonide 9 mg daily"]),
        ("heartburn and dysphagia", "gastro-oesophageal reflux disease", "an upper gastrointestinal endoscopy",
         ["omeprazole 20 mg twice daily"]),
        ("abnormal liver function tests", "non-alcoholic fatty liver disease", "a liver ultrasound and a FibroScan", []),
    ]),
]
GPS = ["Okafor", "Lindqvist", "Brennan", "Haddad", "Nakamura", "Ferreira", "Kowalski", "Abara", "Sorensen", "Mehta",
       "Duval", "Castellanos", "O'Neill", "Petrov", "Adeyemi"]
PATIENTS = ["Whitfield", "Marchetti", "Ashworth", "Delacroix", "Oyelaran", "Halvorsen", "Pemberton", "Quintero",
            "Yilmaz", "Fairbanks", "Novak", "Tremblay", "Achebe", "Lindgren", "Castillo", "Moreau", "Iqbal", "Dunmore"]
SPECIALISTS = ["A. Moreau", "R. Singh", "E. Walsh", "T. Okonkwo", "M. Bergstrom", "L. Fontaine", "S. Rahman", "J. Castell"]
HISTORY = ["hypertension", "type 2 diabetes", "hypothyroidism", "osteoarthritis", "chronic kidney disease stage 3",
           "hyperlipidaemia", "depression", "gout", "asthma", "atrial fibrillation"]
DURATIONS = ["two weeks", "six weeks", "three months", "six months", "over a year", "several years"]
FOLLOW = ["in six weeks", "in three months", "in four months", "in six months", "once the results are available"]
EXAM = [
    "her chest was clear and heart sounds were normal",
    "there was no peripheral oedema and the chest was clear",
    "the abdomen was soft and non-tender",
    "neurological examination was unremarkable",
    "there were fine bibasal crackles",
    "the thyroid was diffusely enlarged without nodules",
]


def letter(rng):
    clinic, title, cases = rng.choice(CLINICS)
    symptom, impression, test, meds = rng.choice(cases)
    woman = rng.random() < 0.5
    honorific = rng.choice(["Mrs.", "Ms."]) if woman else "Mr."
    she, her = ("she", "her") if woman else ("he", "his")
    age = rng.randint(24, 89)
    history = rng.sample(HISTORY, rng.randint(1, 2))
    gp = rng.choice(GPS)
    patient = rng.choice(PATIENTS)
    bp = f"{rng.randint(104, 168)}/{rng.randint(62, 98)} mmHg"
    hr = rng.randint(54, 108)
    exam = rng.choice(EXAM).replace("her ", her + " ")
    parts = [f"Dear Dr. {gp},", ""]
    parts.append(f"Thank you for referring {honorific} {patient}, a {age}-year-old "
                 f"{'woman' if woman else 'man'} with {' and '.join(history)}, whom I saw in the {clinic} clinic "
                 f"today regarding {symptom}.")
    parts.append("")
    parts.append(f"{she.capitalize()} describes {symptom} over the last {rng.choice(DURATIONS)}. "
                 f"{rng.choice(['There are no red flag features.', 'There is no weight loss.', f'{she.capitalize()} has not needed to attend the emergency department.', f'{she.capitalize()} continues to work full time.'])}")
    parts.append("")
    parts.append(f"On examination {her} blood pressure was {bp} and {her} heart rate {hr} bpm; {exam}.")
    parts.append("")
    plan = f"My impression is of {impression}. I have arranged {test}"
    if meds:
        plan += f" and started {' and '.join(meds)}"
    plan += f". I will review {'her' if woman else 'him'} in clinic {rng.choice(FOLLOW)}."
    parts.append(plan)
    parts.append("")
    parts.append("Yours sincerely,")
    parts.append("")
    parts.append(f"Dr. {rng.choice(SPECIALISTS)}")
    parts.append(title)
    return "\n".join(parts)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make-letters.py SEED N")
    rng = random.Random(int(sys.argv[1]))
    n = int(sys.argv[2])
    sys.stdout.write("\n\n".join(letter(rng) for _ in range(n)) + "\n")


if __name__ == "__main__":
    main()
